"""The kit's code for a3_attention_bert: what its tests and full-size runs use beside the deliverables."""
