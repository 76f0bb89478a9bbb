"""What a test process imports early so that it is loaded once and shared.

``SHARED``: what torch imports on the first backward pass (with sympy), in a grading child and in
its deliverable process alike: imported before the deliverable process forks
(``grader.testprocess.plugin``), or in the zygote, once, and shared (0.2-0.5 s and 36 MB).
"""

SHARED = ("torch.fx.experimental.symbolic_shapes",)
