"""The kit's code for a1_lm_basics: what its tests and full-size runs use beside the deliverables."""
