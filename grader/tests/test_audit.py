"""The static audit: a forbidden function is found however it is reached, dynamic access costs a
rule's points, and honest code (every reference, helpers named like torch's, an MHA over two
files, every alternative in alternatives.toml) raises nothing. The staff flags keep their
behaviour."""

import textwrap
from pathlib import Path

import pytest

from grader import course
from grader.intake import audit
from grader.tests.test_alternatives import ALTERNATIVES, build

A3 = "a3_attention_bert"
RULE = audit.rules(A3)[
    "mha-from-scratch"
]  # the rule as graded (tests/a3_attention_bert/assignment.toml)


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package "pkg" holding ``files`` (name -> source, dedented)."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for name, source in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(textwrap.dedent(source))
    return tmp_path


def found(tmp_path: Path, files: dict[str, str] | str, rule: audit.Rule = RULE) -> list:
    files = {"mha.py": files} if isinstance(files, str) else files
    return audit.violations(tree(tmp_path, files), "pkg", rule)


# --------------------------------------------------------------------------- forbidden names

FORBIDDEN = {
    "module attribute": "import torch\nout = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n",
    "import alias": "import torch.nn.functional as F\nout = F.scaled_dot_product_attention(q, k, v)\n",
    "from-import alias": "from torch.nn import MultiheadAttention as M\nm = M(4, 2)\n",
    "from-import": "from torch.nn.functional import multi_head_attention_forward\n",
    "getattr with a constant": "import torch.nn.functional as F\nf = getattr(F, 'scaled_dot_product_attention')\n",
    "getattr with a folded constant": "import torch\nf = getattr(torch.nn.functional, 'scaled_dot_' + 'product_attention')\n",
    "attribute of anything, defined nowhere": "def f(mod):\n    return mod.functional.scaled_dot_product_attention\n",
    "re-binding": "import torch.nn.functional as F\nG = F\nH = G\nout = H.scaled_dot_product_attention(q, k, v)\n",
    "inside a function, re-bound": "from torch.nn import functional\ndef f(q):\n    g = functional\n    return g.scaled_dot_product_attention(q, q, q)\n",
    "a literal container": "import torch.nn.functional as F\nf = [F][0].scaled_dot_product_attention\n",
    "a conditional expression": "import torch.nn.functional as F\nf = (F if True else None).scaled_dot_product_attention\n",
    "a star import": "from torch.nn.functional import *\nout = scaled_dot_product_attention(q, k, v)\n",
    "torch's private kernel": "import torch\nout = torch._scaled_dot_product_attention_math(q, k, v)[0]\n",
    "the triton kernel's other spelling": "import torch\nf = torch._triton_scaled_dot_attention\n",
    "a Transformer layer holds an nn.MultiheadAttention": "from torch import nn\nattn = nn.TransformerEncoderLayer(8, 2).self_attn\n",
    "flex attention": "from torch.nn.attention.flex_attention import flex_attention\n",
    "transformers' BERT attention": "from transformers.models.bert.modeling_bert import BertSelfAttention\n",
    "transformers' attention functions": "from transformers.integrations.sdpa_attention import sdpa_attention_forward\n",
    "transformers' registry of them": "from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS\n",
    "a class attribute of the forbidden class": "import torch\nfwd = torch.nn.MultiheadAttention.forward\n",
}


@pytest.mark.parametrize("label", sorted(FORBIDDEN))
def test_every_spelling_of_a_forbidden_name_is_found_with_its_line(tmp_path, label):
    source = "x = 1\n" + FORBIDDEN[label]
    hits = found(tmp_path, source)
    assert hits, label
    assert all(f.file == "pkg/mha.py" and f.line >= 2 and f.kind == "rule" for f in hits)
    assert hits[0].code.strip() in source


@pytest.mark.parametrize("where", ["lora.py", "sub/helpers.py"])
def test_a_forbidden_name_counts_in_every_file_of_the_submission(tmp_path, where):
    hits = found(
        tmp_path,
        {
            "mha.py": "x = 1\n",
            where: "import torch.nn.functional as F\nfast = F.scaled_dot_product_attention\n",
        },
    )
    assert [(f.file, f.line) for f in hits] == [(f"pkg/{where}", 2)]


def test_names_reached_through_another_module_of_the_submission(tmp_path):
    files = {
        "core.py": "import torch.nn.functional as F\nG = F\n",
        "mha.py": "from . import core\nfrom .core import G\nfrom pkg.core import F\n"
        "a = core.G.scaled_dot_product_attention\nb = G.scaled_dot_product_attention\n"
        "c = F.scaled_dot_product_attention\n",
    }
    assert [f.line for f in found(tmp_path, files)] == [4, 5, 6]


# --------------------------------------------------------------------------- dynamic access

DYNAMIC = {
    "getattr on a joined name": (
        "import torch.nn.functional as F\n"
        "f = getattr(F, ''.join(['scaled_dot', '_product_attention']))\n",
        "getattr",
    ),
    "vars() filtered by a predicate": (
        "import torch.nn.functional as F\n"
        "f = [v for k, v in vars(F).items() if k.startswith('scaled')][0]\n",
        "vars",
    ),
    "base64 and exec": ("import base64\nexec(base64.b64decode('ZiA9IDE='))\n", "exec"),
    "eval": ("g = eval('1 + 1')\n", "eval"),
    "compile": ("code = compile('x = 1', 'f', 'exec')\n", "compile"),
    "__import__": ("m = __import__('torch.nn.functional')\n", "__import__"),
    "importlib": (
        "import importlib\nm = importlib.import_module('torch.nn.functional')\n",
        "importlib",
    ),
    "importlib by from-import": (
        "from importlib import import_module as im\nm = im('torch')\n",
        "importlib",
    ),
    "sys.modules": ("import sys\nF = sys.modules['torch.nn.functional']\n", "sys.modules"),
    "torch._C": ("import torch\nwith torch._C.DisableTorchFunction():\n    pass\n", "torch._C"),
    "torch.ops": ("import torch\nop = torch.ops.aten.mm\n", "torch.ops"),
    "torch.ops from-imported": ("from torch import ops\nop = ops.aten.mm\n", "torch.ops"),
    "torch.library": (
        "import torch.library\nlib = torch.library.Library('aten', 'IMPL')\n",
        "torch.library",
    ),
    "torch.overrides": (
        "from torch.overrides import TorchFunctionMode\nclass M(TorchFunctionMode):\n    pass\n",
        "torch.overrides",
    ),
    "operator.attrgetter": (
        "import operator, torch\nf = operator.attrgetter('nn.functional')(torch)\n",
        "attrgetter",
    ),
    "operator.methodcaller": (
        "from operator import methodcaller\nf = methodcaller('x')\n",
        "methodcaller",
    ),
    "inspect.getmembers": (
        "import inspect, torch\nm = dict(inspect.getmembers(torch))\n",
        "inspect",
    ),
    "types.FunctionType": (
        "import types\nf = types.FunctionType(g.__code__, {})\n",
        "FunctionType",
    ),
    "a module's __dict__": ("import torch.nn.functional as F\nf = F.__dict__['x']\n", "__dict__"),
    "builtins": ("import builtins\nf = builtins.getattr\n", "builtins"),
    "globals()": ("f = globals()['F']\n", "globals"),
    "vars() without an argument": ("f = vars()['F']\n", "vars"),
    "getattr as a value": ("g = getattr\n", "getattr"),
    "getattr through functools.partial": (
        "import functools, torch\nget = functools.partial(getattr, torch)\n",
        "getattr",
    ),
    "a helper handed the module": (
        "import torch.nn.functional as F\ndef grab(o, n):\n"
        "    return getattr(o, n)\nf = grab(F, name)\n",
        "getattr",
    ),
    "a helper handed it by keyword": (
        "import torch.nn.functional as F\ndef grab(*, o, n):\n"
        "    return getattr(o, n)\nf = grab(o=F, n=name)\n",
        "getattr",
    ),
    "a method handed it": (
        "import torch\nclass A:\n    def grab(self, o, n):\n"
        "        return getattr(o, n)\nf = A().grab(torch, name)\n",
        "getattr",
    ),
    "a lambda handed it": (
        "import torch\nf = (lambda o, n: getattr(o, n))(torch, name)\n",
        "getattr",
    ),
    "a module passed around": (
        "import torch.nn.functional as F\ndef use(mods):\n    return mods\nm = use([F])\n",
        "passed around",
    ),
    "pickle": ("import pickle\nf = pickle.loads(data)\n", "pickle"),
    "torch.load(weights_only=False)": (
        "import torch\nf = torch.load(p, weights_only=False)\n",
        "weights_only",
    ),
    "numpy.load(allow_pickle=True)": (
        "import numpy as np\nf = np.load(p, allow_pickle=True)\n",
        "allow_pickle",
    ),
    "sys.path": ("import sys\nsys.path.insert(0, '.')\n", "sys.path"),
    "gc": ("import gc\nobjs = gc.get_objects()\n", "gc"),
    "ctypes": ("import ctypes\np = ctypes.cast(0, ctypes.py_object)\n", "ctypes"),
    "a global forward hook": (
        "from torch.nn.modules.module import register_module_forward_hook\n"
        "register_module_forward_hook(hook)\n",
        "register_module_forward_hook",
    ),
    "__subclasses__": (
        "from torch import nn\nkids = nn.Module.__subclasses__()\n",
        "__subclasses__",
    ),
    "mro()": ("base = type(m).mro()[1]\n", "mro"),
    "patching a library class": (
        "from torch import nn\nnn.Module.__call__ = lambda self, *a: 0\n",
        "__call__",
    ),
    "patching a library function": (
        "import torch.nn.functional as F\nF.softmax = fast\n",
        "changing torch.nn.functional.softmax",
    ),
    "setattr on a library": (
        "import torch\nsetattr(torch.nn.Linear, 'forward', fast)\n",
        "setattr",
    ),
    "a dunder stored on anything": ("x.__call__ = fast\n", "__call__"),
    "__builtins__": ("g = __builtins__['getattr']\n", "__builtins__"),
    "private torch dispatch helpers": (
        "from torch.utils._python_dispatch import _disable_current_modes\n"
        "_disable_current_modes()\n",
        "internals",
    ),
    "setattr of a dunder on anything": ("setattr(cls, '__call__', fast)\n", "__call__"),
    "getattr of a dunder on anything": ("g = getattr(F, '__dict__')\n", "__dict__"),
    "pydoc.locate": ("import pydoc\nf = pydoc.locate('torch.nn.functional.x')\n", "pydoc"),
    "pkgutil.resolve_name": (
        "import pkgutil\nf = pkgutil.resolve_name('torch.nn.functional:x')\n",
        "pkgutil",
    ),
    "typing.get_type_hints": (
        "import typing\ndef f(x: 'sum'): pass\ng = typing.get_type_hints(f)\n",
        "get_type_hints",
    ),
    "unittest.mock.patch": (
        "from unittest import mock\np = mock.patch('torch.nn.functional.softmax', fast)\n",
        "mock",
    ),
    "cpp_extension": (
        "from torch.utils.cpp_extension import load_inline\nm = load_inline('m', src)\n",
        "cpp_extension",
    ),
    "subprocess": ("import subprocess\nsubprocess.run(['python', '-c', code])\n", "subprocess"),
    "trust_remote_code": (
        "from transformers import AutoModel\nm = AutoModel.from_pretrained(p, trust_remote_code=True)\n",
        "trust_remote_code",
    ),
    "patching typing.TYPE_CHECKING": (
        "import typing\ntyping.TYPE_CHECKING = True\n",
        "changing typing.TYPE_CHECKING",
    ),
}


@pytest.mark.parametrize("label", sorted(DYNAMIC))
def test_dynamic_access_costs_the_rule_and_says_how_to_write_it(tmp_path, label):
    source, what = DYNAMIC[label]
    hits = found(tmp_path, "x = 1\n" + source)
    assert hits, label
    assert all(f.line >= 2 for f in hits), [f.describe() for f in hits]
    assert any(what in f.why for f in hits), [f.why for f in hits]
    assert any("Instead, " in f.why for f in hits), [f.why for f in hits]


def test_a_module_of_the_submission_named_like_a_library_shadows_nothing(tmp_path):
    """``import torch`` is torch's even when the package holds a torch.py with a decoy."""
    files = {
        "torch.py": "def scaled_dot_product_attention(q, k, v):\n    return q\n",
        "mha.py": "import torch\nout = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n",
    }
    assert [(f.file, f.line) for f in found(tmp_path, files)] == [("pkg/mha.py", 2)]


def test_class_attributes_resolve_through_the_class_body(tmp_path):
    source = """
        import torch.nn.functional as F


        def scaled_dot_product_attention(q, k, v):  # a decoy: the name is now defined here
            return q


        class A:
            f = F


        out = A.f.scaled_dot_product_attention(q, k, v)
    """
    assert [f.line for f in found(tmp_path, source)] == [10, 13]  # 10: a module in a class body


@pytest.mark.parametrize(
    "source",
    [
        "import torch.nn.functional as F\nclass A:\n    G = F\n"
        "    def f(self):\n        return self.G.scaled_dot_product_attention\n",
        "import torch.nn.functional as F\ndef setup():\n    global G\n    G = F\n"
        "out = G.scaled_dot_product_attention\n",
    ],
    ids=["a class attribute read through self", "a global set in a function"],
)
def test_a_decoy_does_not_hide_a_module_bound_elsewhere(tmp_path, source):
    decoy = "def scaled_dot_product_attention():\n    pass\n"
    assert found(tmp_path, decoy + source)


def test_code_under_a_type_checking_that_is_not_typing_s_is_read(tmp_path):
    source = (
        "TYPE_CHECKING = True\nif TYPE_CHECKING:\n    import torch.nn.functional as F\n"
        "    out = F.scaled_dot_product_attention(q, k, v)\n"
    )
    assert [f.line for f in found(tmp_path, source)] == [4]


def test_dynamic_access_counts_only_where_a_rule_asks_for_it(tmp_path):
    rule = audit.Rule("names-only", ("mha.py",), RULE.forbid)  # no `dynamic`, no `libraries`
    source = "import importlib\nm = importlib.import_module('x')\nexec('y = 1')\n"
    assert found(tmp_path, source, rule) == []
    assert audit.flags(Path(tmp_path), "pkg")  # ... while staff still see it


@pytest.mark.parametrize("where", ["lora.py", "notebook_helpers.py"])
def test_another_module_patching_mha_at_import_is_found(tmp_path, where):
    files = {
        "mha.py": "from torch import nn\nclass MultiHeadAttention(nn.Module):\n    pass\n",
        where: "from . import mha\nfrom .mha import MultiHeadAttention as M\n"
        "mha.MultiHeadAttention.forward = fast\nsetattr(M, 'forward', fast)\n"
        "M.load_from = fast\n",
    }
    hits = found(tmp_path, files)
    assert [(f.file, f.line) for f in hits] == [(f"pkg/{where}", n) for n in (3, 4, 5)]
    assert all("monkeypatching" in f.why for f in hits)


def test_a_module_patched_through_a_helper_or_a_container_is_found(tmp_path):
    files = {
        "mha.py": "class MultiHeadAttention:\n    pass\n",
        "lora.py": "from . import mha\ndef put(o, v):\n    o.MultiHeadAttention.forward = v\n"
        "put(mha, fast)\n[mha][0].MultiHeadAttention.forward = fast\n",
    }
    hits = found(tmp_path, files)
    assert sorted({f.line for f in hits}) == [3, 4, 5]  # 4 and 5: mha handed around, too
    assert any("your module pkg.mha, passed around as a value" in f.why for f in hits)


# --------------------------------------------------------------------------- libraries of mha.py


def test_mha_and_what_it_imports_may_use_torch_and_the_standard_library_only(tmp_path):
    files = {
        "mha.py": "import math\nimport torch\nfrom .core import attend\n",
        "core.py": "from transformers import AutoModel\nmodel = AutoModel.from_config(cfg)\n"
        "def attend(x):\n    return model.encoder.layer[0].attention.self(x)\n",
        "finetune.py": "from transformers import AutoModel\nm = AutoModel.from_pretrained('x')\n",
    }
    hits = found(tmp_path, files)
    assert [(f.file, f.line) for f in hits] == [("pkg/core.py", 2)]  # the rest is a call's result
    assert "transformers" in hits[0].why and "standard library" in hits[0].why


def test_an_unused_import_is_not_a_use(tmp_path):
    """A notebook's imports are added to every module it defines something in."""
    source = "import inspect\nimport transformers\nfrom torch import nn\nx = nn.Linear(2, 2)\n"
    assert found(tmp_path, source) == []


# --------------------------------------------------------------------------- honest code

HONEST = {
    "a helper of its own named like torch's, and an error naming it": '''
        import torch
        import torch.nn.functional as F


        def scaled_dot_product_attention(q, k, v, mask=None):
            """Like torch.nn.functional.scaled_dot_product_attention, written out."""
            if q.dim() != 4:
                raise ValueError("scaled_dot_product_attention needs (B, nh, T, hs) inputs")
            att = q @ k.transpose(-2, -1) / q.size(-1) ** 0.5
            return F.softmax(att, dim=-1) @ v


        out = scaled_dot_product_attention(q, k, v)
    ''',
    "a method named like torch's, called on self": """
        from torch import nn


        class MultiHeadAttention(nn.Module):
            def scaled_dot_product_attention(self, q, k, v):
                return (q @ k.transpose(-2, -1)).softmax(-1) @ v

            def forward(self, q, k, v):
                return self.scaled_dot_product_attention(q, k, v)
    """,
    "annotations and TYPE_CHECKING imports": """
        from __future__ import annotations
        from typing import TYPE_CHECKING
        import torch.nn as nn

        if TYPE_CHECKING:
            from torch.nn import MultiheadAttention


        def load_from(self, mha: MultiheadAttention) -> nn.MultiheadAttention:
            weights: nn.MultiheadAttention = mha
            return weights
    """,
    "docstrings, comments and strings": '''
        """Attention without scaled_dot_product_attention or nn.MultiheadAttention."""
        import torch

        HINT = "not torch.nn.functional.scaled_dot_product_attention"


        def attention(q, k, v):
            """Unlike F.scaled_dot_product_attention, written out."""
            return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v  # no scaled_dot_product_attention
    ''',
    "getattr and setattr on the model's own modules (LoRA injection)": """
        from torch import nn


        def inject(model, targets, wrap):
            for name, module in list(model.named_modules()):
                if isinstance(module, nn.Linear) and name.split(".")[-1] in targets:
                    *path, attribute = name.split(".")
                    parent = model
                    for part in path:
                        parent = getattr(parent, part)
                    setattr(parent, attribute, wrap(getattr(parent, attribute)))
            return model


        def count(args):
            return {k: v for k, v in vars(args).items()}
    """,
    "settings of libraries and the environment": """
        import os
        import torch

        torch.backends.cudnn.deterministic = True
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        os.environ["HF_HOME"] = str(path)
    """,
    "methods named like built-ins, and shadowed built-ins": """
        import re
        import torch

        model.eval()
        pattern = re.compile("x")
        fast = torch.compile(model)
        compile = lambda s: s
        code = compile("x")
    """,
    "library functions and classes handed around": """
        import torch.nn.functional as F
        from torch import nn


        def block(act=F.gelu, layer=nn.Linear):
            return layer(2, 2), act


        m = block(F.relu, nn.Linear)
        ok = isinstance(m, (nn.Linear, nn.Embedding))
        G = F
        y = G.softmax(x, dim=-1)
    """,
    "an override of __getattr__ reaching its base": """
        from torch import nn


        class Wrapper(nn.Module):
            def __getattr__(self, name):
                try:
                    return super().__getattr__(name)
                except AttributeError:
                    return getattr(self.base, name)
    """,
    "names that only look like dynamic access": """
        import torch

        t = torch.trace(a)  # a matrix's trace
        traced = torch.jit.trace(model, (x,))
        with torch.profiler.profile() as prof:
            pass
        self._cache = {}
        setattr(self, "scale", 2.0)
    """,
    "its own module's attributes set at import": """
        class MultiHeadAttention:
            pass


        MultiHeadAttention.scale = 2.0
        MultiHeadAttention.helper = staticmethod(len)
    """,
}


@pytest.mark.parametrize("label", sorted(HONEST))
def test_honest_code_raises_nothing(tmp_path, label):
    hits = found(tmp_path, HONEST[label])
    assert hits == [], [f.describe() for f in hits]


def test_an_mha_over_two_modules_raises_nothing(tmp_path):
    files = {
        "attention_core.py": """
            import math
            import torch


            def scaled_dot_product_attention(q, k, v, mask=None):
                att = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
                if mask is not None:
                    att = att.masked_fill(mask, float("-inf"))
                return torch.softmax(att, dim=-1) @ v
        """,
        "mha.py": """
            from torch import nn

            from . import attention_core
            from .attention_core import scaled_dot_product_attention


            class MultiHeadAttention(nn.Module):
                def forward(self, q, k, v):
                    a = scaled_dot_product_attention(q, k, v)
                    return attention_core.scaled_dot_product_attention(a, k, v)
        """,
    }
    assert found(tmp_path, files) == []


def test_a_file_the_audit_cannot_read_counts_against_the_rule(tmp_path):
    """Too large, or nested deeper than any honest module: the rule cannot be checked."""
    deep = "x = " + "+".join(["1"] * 3000) + "\n"  # parses, but no visitor follows it
    files = {"mha.py": "x = 1\n" + "# padding\n" * 300_000, "lora.py": deep}
    hits = found(tmp_path, files)
    assert sorted(f.file for f in hits) == ["pkg/lora.py", "pkg/mha.py"]
    assert all("the audit cannot read this file" in f.why for f in hits)


def test_a_chain_of_re_bindings_too_long_to_follow_counts_against_the_rule(tmp_path):
    # In reverse, so that no link is resolved before the one it names.
    chain = "".join(f"G{i + 1} = G{i}\n" for i in reversed(range(200)))
    source = (
        "import torch.nn.functional as G0\n"
        + chain
        + "def scaled_dot_product_attention():\n    pass\n"  # a decoy for the name
        + "out = G200.scaled_dot_product_attention(q, k, v)\n"
    )
    hits = found(tmp_path, source)
    assert hits and any("cannot follow" in f.why for f in hits)


def test_the_source_is_read_in_its_declared_encoding(tmp_path):
    """In UTF-7, "+AAo-" is a newline: what UTF-8 shows as a comment is code to Python."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mha.py").write_bytes(
        b"# -*- coding: utf-7 -*-\nimport torch\n"
        b"# +AAo-f = torch.nn.functional.scaled+AF8-dot+AF8-product+AF8-attention\n"
    )
    hits = audit.violations(tmp_path, "pkg", RULE)
    assert hits and "scaled_dot_product_attention" in hits[0].why


def test_a_file_that_does_not_parse_is_skipped(tmp_path):
    hits = found(tmp_path, "def f(:\n    pass\n")
    assert hits == [] and audit.flags(Path(tmp_path), "pkg") == []


@pytest.mark.parametrize("assignment", course.names())
def test_the_references_and_templates_raise_nothing(assignment):
    assert audit.flags(course.REFERENCE, assignment) == []
    for root in (course.REFERENCE, course.TEMPLATE):
        for rule in audit.rules(assignment).values():
            assert audit.violations(root, assignment, rule) == []
        # a rule as strict as a3's would not trip any reference either
        assert audit.violations(root, assignment, RULE) == []


@pytest.mark.parametrize("alt", ALTERNATIVES, ids=[a["id"] for a in ALTERNATIVES])
def test_every_honest_alternative_raises_nothing(tmp_path, alt):
    root = build(alt, tmp_path)
    for rule in [*audit.rules(alt["assignment"]).values(), RULE]:
        hits = audit.violations(root, alt["assignment"], rule)
        assert hits == [], [f.describe() for f in hits]


# --------------------------------------------------------------------------- staff flags


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
    hits = audit.flags(tree(tmp_path, {"mha.py": source}), "pkg")
    whys = " ".join(f.why for f in hits)
    for what in ("garbage collector", "introspection", "frame introspection", "dynamic code"):
        assert what in whys, whys
