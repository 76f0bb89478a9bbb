"""Course-kit grading engine."""
