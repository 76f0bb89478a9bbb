"""Assignment 1 — language-model basics (handouts H1 and H2.1)."""
