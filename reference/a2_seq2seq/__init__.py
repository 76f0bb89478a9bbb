"""Assignment 2 — recurrent models, Seq2Seq and a Transformer translator (handout H3)."""
