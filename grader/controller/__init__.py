"""The grader's side: grading runs, the processes it starts and watches, results.json.

Nothing here imports student code. ``pipeline`` takes a submission to results.json (overlay,
audit, grade, results); ``grading`` grades one tree; ``runner`` starts the grading children
(``zygote`` forks them warm) and enforces their limits; ``results`` builds and writes results.json;
``mutant_hints`` adds the catalogue's hints to failed tests.
"""
