"""The kit's code for a2_seq2seq: what its tests and full-size runs use beside the deliverables."""
