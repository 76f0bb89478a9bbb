"""The boundary between the tests and student code.

Student code runs in a *deliverable process* of its own (``server``), as an unprivileged user,
and talks to the trusted test process (``client``) only in plain data: the messages declared in
``protocol``, in the format of ``wire`` (tensors as bytes with dtype and shape, numbers, strings,
lists and dicts — never pickle). Tests, oracles, expected values and scores live in the test
process alone.
"""
