"""The trusted test process: pytest with the grader's plugin, running the graded tests.

``plugin`` records each test's score for the controller and starts the deliverable process;
``deliverables`` is the tests' view of the graded code (lazy, through the boundary when grading);
``failure_messages`` turns an exception into the text a student reads; ``comparison_messages``
says what differed when a value is wrong.
"""
