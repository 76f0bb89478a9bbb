"""The kit's own tests: the grading engine, its schema, isolation, and every assignment's
validate and mutants checks."""

pytest_plugins = ["pytester"]
