"""Assignment 3 — attention, LoRA, BERT and fine-tuning (handouts H4, H2.2-3, H5)."""
