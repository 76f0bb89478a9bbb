"""The static audit finds a forbidden function however it is spelt, and flags code that reaches
for the grader; honest code (every assignment's reference) raises nothing."""

import textwrap
from pathlib import Path

import pytest

from grader import assignments, audit

RULE = audit.Rule(
    "from-scratch",
    ("mha.py",),
    (
        "torch.nn.MultiheadAttention",
        "torch.nn.functional.scaled_dot_product_attention",
        "torch.nn.functional.multi_head_attention_forward",
    ),
)


def tree(tmp_path: Path, source: str) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mha.py").write_text(textwrap.dedent(source))
    return tmp_path


SPELLINGS = {
    "module attribute": "import torch\nout = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n",
    "import alias": "import torch.nn.functional as F\nout = F.scaled_dot_product_attention(q, k, v)\n",
    "from-import alias": "from torch.nn import MultiheadAttention as M\nm = M(4, 2)\n",
    "from-import": "from torch.nn.functional import multi_head_attention_forward\n",
    "getattr with a constant": "import torch.nn.functional as F\nf = getattr(F, 'scaled_dot_product_attention')\n",
    "getattr with a folded constant": "import torch\nf = getattr(torch.nn.functional, 'scaled_dot_' + 'product_attention')\n",
    "attribute of anything": "def f(mod):\n    return mod.functional.scaled_dot_product_attention\n",
    "a string for eval": "import torch\nf = eval('torch.nn.functional.scaled_dot_product_attention')\n",
    "an f-string of constants": "name = f\"{'scaled_dot'}_product_attention\"\n",
}


@pytest.mark.parametrize("label", sorted(SPELLINGS))
def test_every_spelling_is_found_with_its_line(tmp_path, label):
    source = "x = 1\n" + SPELLINGS[label]
    found = audit.violations(tree(tmp_path, source), "pkg", RULE)
    assert found, label
    assert all(f.file == "pkg/mha.py" and f.line >= 2 for f in found)
    assert found[0].code.strip() in source


def test_docstrings_and_other_files_are_not_findings(tmp_path):
    source = '''
        """Attention without scaled_dot_product_attention or nn.MultiheadAttention."""
        import torch


        def attention(q, k, v):
            """Unlike torch.nn.functional.scaled_dot_product_attention, written out."""
            return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
    '''
    root = tree(tmp_path, source)
    (root / "pkg" / "other.py").write_text("import torch\nF = torch.nn.MultiheadAttention\n")
    assert audit.violations(root, "pkg", RULE) == []


def test_annotations_are_not_uses(tmp_path):
    source = """
        from __future__ import annotations
        import torch.nn as nn


        def load_from(self, mha: nn.MultiheadAttention) -> nn.MultiheadAttention:
            weights: nn.MultiheadAttention = mha
            return weights
    """
    assert audit.violations(tree(tmp_path, source), "pkg", RULE) == []


def test_flags_name_introspection_and_dynamic_code(tmp_path):
    source = """
        import sys, gc
        import inspect as ins


        def f():
            frame = sys._getframe(1)
            caller = frame.f_back.f_locals
            objs = gc.get_objects()
            exec("x = 1")
            return ins.stack()
    """
    found = audit.flags(tree(tmp_path, source), "pkg")
    whys = " ".join(f.why for f in found)
    for what in ("garbage collector", "introspection", "frame introspection", "dynamic code"):
        assert what in whys, whys


def test_a_file_that_does_not_parse_is_skipped(tmp_path):
    root = tree(tmp_path, "def f(:\n    pass\n")
    assert audit.violations(root, "pkg", RULE) == [] and audit.flags(root, "pkg") == []


@pytest.mark.parametrize("assignment", assignments.names())
def test_the_references_raise_no_flag(assignment):
    assert audit.flags(assignments.REFERENCE, assignment) == []
    for rule in audit.rules(assignment).values():
        assert audit.violations(assignments.REFERENCE, assignment, rule) == []
