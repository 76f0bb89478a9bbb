"""Rules a handout states about *how* a deliverable is written, enforced while it runs.

A test asks for a guard by name when it calls student code (``grader.testprocess.deliverables.guarded``); the
deliverable process applies it for the length of that call. A guard is a second layer only: it
runs in the student's process, where code of the submission ran first (at import, in any module
of it) and can switch it off or go around it: keep a function it replaces from before it was
applied, call below it, patch what it patches. It catches honest mistakes and explains them while
they happen. The static audit (``grader.intake.audit``), which reads every file of the submission on the
trusted side, is what a score relies on: it refuses what would switch a guard off (``torch._C``,
``torch.overrides``, PyTorch's private dispatch helpers, monkeypatching, dynamic lookups).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

GUARDS: dict[str, Callable[[], object]] = {}


def guard(name: str):
    def register(factory):
        GUARDS[name] = factory
        return factory

    return register


class ForbiddenFunctionError(RuntimeError):
    """Student code called a function that the assignment forbids."""


@contextmanager
def applied(names: list) -> Iterator[None]:
    with ExitStack() as stack:
        for name in names:
            factory = GUARDS.get(name) if isinstance(name, str) else None
            if factory is None:
                raise ValueError(f"unknown guard {str(name)[:40]!r}")
            stack.enter_context(factory())
        yield


# --------------------------------------------------------------------------- no_builtin_attention

HINT_BUILTIN_ATTENTION = (
    "H4.1 asks for attention written out: projections, q @ kᵀ / √hs, masking, softmax, weights @ v "
    "— not nn.MultiheadAttention, F.scaled_dot_product_attention or F.multi_head_attention_forward"
)
_SDPA = "torch.nn.functional.scaled_dot_product_attention"
# (the name students see, where it lives, attribute); the owners are looked up when the guard is
# applied, so that importing this module never imports torch.
_BUILTIN_ATTENTION = (
    ("torch.nn.MultiheadAttention.forward", "torch.nn.MultiheadAttention", "forward"),
    (_SDPA, "torch.nn.functional", "scaled_dot_product_attention"),
    (
        "torch.nn.functional.multi_head_attention_forward",
        "torch.nn.functional",
        "multi_head_attention_forward",
    ),
    (
        f"{_SDPA} (as torch._C._nn.scaled_dot_product_attention)",
        "torch._C._nn",
        "scaled_dot_product_attention",
    ),
    ("torch._native_multi_head_attention", "torch", "_native_multi_head_attention"),
)


# Parts of the names of PyTorch's fused attention operators (torch.ops.aten), as the dispatcher
# sees them: _scaled_dot_product_flash_attention_for_cpu, _native_multi_head_attention,
# _efficient_attention_forward, _triton_scaled_dot_attention ...
_FUSED_KERNELS = (
    "scaled_dot_product",
    "scaled_dot_attention",
    "multi_head_attention",
    "flash_attention",
    "efficient_attention",
    "cudnn_attention",
    "fused_attention",
)


def _refuse_attention(name: str) -> None:
    raise ForbiddenFunctionError(
        f"your forward called {name}, which this assignment forbids. {HINT_BUILTIN_ATTENTION}."
    )


def _owner(dotted: str) -> Any:
    import importlib

    module, _, rest = dotted.partition(".")
    obj: Any = importlib.import_module(module)
    for part in rest.split(".") if rest else ():
        obj = getattr(obj, part)
    return obj


@guard("no_builtin_attention")
@contextmanager
def no_builtin_attention() -> Iterator[None]:
    """Within: PyTorch's built-in attention raises :class:`ForbiddenFunctionError` (H4.1).

    Three layers. The functions are replaced where they live; a ``TorchFunctionMode`` catches
    them however they are reached (a name imported before the guard replaced them, ``from
    torch.nn.functional import scaled_dot_product_attention``); and a ``TorchDispatchMode``
    refuses PyTorch's fused attention kernels at the dispatcher, where ``torch.ops.aten``'s ops
    arrive even inside ``torch._C.DisableTorchFunction()``. Not seen: attention computed by
    PyTorch's *math* fallback, which reaches the dispatcher as the matmuls and softmax an honest
    forward uses (the static audit refuses the names that lead there). The originals are put back
    on the way out, so code outside the guarded call (an oracle ``nn.MultiheadAttention``) runs
    as usual.
    """
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    saved = [
        (owner, attr, getattr(owner, attr))
        for owner, attr in ((_owner(o), a) for _, o, a in _BUILTIN_ATTENTION)
    ]
    originals: dict[int, str] = {}  # F.scaled_dot_product_attention is torch._C._nn's: 1st name
    for (name, _, _), (_, _, original) in zip(_BUILTIN_ATTENTION, saved, strict=True):
        originals.setdefault(id(original), name)

    class RefuseBuiltinAttention(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if id(func) in originals or "scaled_dot_product" in name or "multi_head_att" in name:
                _refuse_attention(originals.get(id(func), f"torch's {name}"))
            return func(*args, **(kwargs or {}))

    class RefuseFusedKernels(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.name()  # "aten::_scaled_dot_product_flash_attention_for_cpu"
            if any(kernel in name for kernel in _FUSED_KERNELS):
                _refuse_attention(f"PyTorch's fused attention kernel {name}")
            return func(*args, **(kwargs or {}))

    try:
        for (name, _, _), (owner, attr, _) in zip(_BUILTIN_ATTENTION, saved, strict=True):

            def stand_in(*args: Any, _name: str = name, **kwargs: Any) -> None:
                _refuse_attention(_name)

            setattr(owner, attr, stand_in)
        with RefuseBuiltinAttention(), RefuseFusedKernels():
            yield
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)
