"""The commands of ``python -m grader`` (``cli``) and what only they use: batch regrading, the
Gradescope entry point (``autograder``), packaging, template generation, the kit's self-check,
the terminal report and its progress line."""
