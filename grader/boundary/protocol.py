"""Every message that crosses the boundary, declared as types.

The test process asks the deliverable process for the operations in ``TO_DELIVERABLE`` (one
``op_<name>`` handler each in ``grader.boundary.server``); the deliverable process asks the test
process for one, ``callback`` (``TO_TEST``: a test's function, or an exposed method of a test's
object, that student code calls). Every request carries its ``op`` and an ``id``; its reply carries
``re`` (that id) and either ``value`` or ``error`` (``Reply``).

A value (``Encoded``) is JSON as ``grader.boundary.wire`` writes it: scalars, lists, ``{"$t": ...}``
tensors whose bytes follow the header, ``{"$ref": Ref}`` objects that stay where they live. Each
side checks a request against its declaration before acting on it (``check_request``): a field
missing or of the wrong kind is a protocol error, never a crash of the side that received it.
"""

from typing import Any, Literal, NotRequired, TypedDict, get_type_hints

from grader.boundary.wire import WireError

Encoded = Any  # a value as the wire encodes it (checked by its Decoder)


class Ref(TypedDict):
    """An object that stays where it lives: ``side`` "d" (deliverable) or "t" (test)."""

    side: Literal["d", "t"]
    id: int
    kind: str  # module, namespace, class, callable, object; "instrument" for a test's object
    type: str  # its class's name, for messages
    method: NotRequired[str]  # a test object's exposed method (callback only)
    methods: NotRequired[list]  # a test object's exposed methods
    cls: NotRequired[int]  # an instance's class, by number (its methods are called by name)


class Request(TypedDict):
    op: str
    id: int


# --------------------------------------------------------------------------- to the deliverable


class Hello(Request):
    """Is the process up? Replies ``{"pid", "uid"}``."""


class Import(Request):
    """Import a deliverable module; replies its ``Ref``."""

    module: str


class GetAttr(Request):
    """``target.name``: a value, or a ``Ref`` for a module, class or callable."""

    target: Ref
    name: str


class SetAttr(Request):
    target: Ref
    name: str
    value: Encoded


class Call(Request):
    """``target(*params[0], **params[1])`` under the test's grad mode, guards and seed."""

    target: Ref
    params: Encoded  # [args, kwargs]
    grad: bool  # torch.is_grad_enabled() in the test
    method: NotRequired[str]  # call target.method(...) (looked up at the call)
    mutable: NotRequired[list]  # paths of the arguments whose changes come back (write-back)
    guards: NotRequired[list]  # names of grader.boundary.guards in force
    rng: NotRequired[Encoded]  # the test's torch RNG state, when it changed


class Build(Request):
    """``factory(*params[0], **params[1])`` for a kit factory named by its dotted path."""

    factory: str
    params: Encoded
    grad: bool
    mutable: NotRequired[list]
    guards: NotRequired[list]
    rng: NotRequired[Encoded]


class Backward(Request):
    """Backward through a result of an earlier call (its ``graph``), with the test's gradients."""

    graph: int
    grads: Encoded


class GetItem(Request):
    target: Ref
    key: Encoded


class Len(Request):
    target: Ref


class List(Request):
    """``list(target)`` (bounded)."""

    target: Ref


class Contains(Request):
    target: Ref
    item: Encoded


class DeepCopy(Request):
    target: Ref


class IsInstance(Request):
    target: Ref
    classes: list  # dotted class names


class Text(Request):
    """``str(target)`` (bounded)."""

    target: Ref


class Reset(Request):
    """Forget every object of the test that ended; release memory."""


TO_DELIVERABLE: dict[str, type] = {
    "hello": Hello,
    "import": Import,
    "getattr": GetAttr,
    "setattr": SetAttr,
    "call": Call,
    "build": Build,
    "backward": Backward,
    "getitem": GetItem,
    "len": Len,
    "list": List,
    "contains": Contains,
    "deepcopy": DeepCopy,
    "isinstance": IsInstance,
    "text": Text,
    "reset": Reset,
}


# --------------------------------------------------------------------------- to the test


class Callback(Request):
    """Student code calls a test's function (or an exposed method of a test's object)."""

    target: Ref
    params: Encoded


TO_TEST: dict[str, type] = {"callback": Callback}


# --------------------------------------------------------------------------- replies


class ErrorInfo(TypedDict):
    """An exception as data (``grader.boundary.errors.from_remote`` rebuilds it, bounded)."""

    type: str
    message: str
    bases: NotRequired[list]
    notes: NotRequired[list]
    frames: NotRequired[list]  # [file, line, function, source] in the student's files
    name: NotRequired[str]  # ImportError.name
    errno: NotRequired[int]
    syntax: NotRequired[list]  # [file, line, message, text]


class Graph(TypedDict):
    """A call's result joins the test's autograd graph: backward goes to ``id``."""

    id: int
    outputs: list  # indices of the result's tensors in the message


class WriteBack(TypedDict):
    path: Encoded  # where, in the call's [args, kwargs]
    value: Encoded  # the argument's new value


class Reply(TypedDict):
    re: int
    value: NotRequired[Encoded]
    error: NotRequired[ErrorInfo]
    writeback: NotRequired[list]  # of WriteBack
    graph: NotRequired[Graph]
    method: NotRequired[bool]  # getattr: a function of the target's class, bound to it


# --------------------------------------------------------------------------- checking

_KINDS = (str, int, bool, list, dict)


def _kind(annotation: Any) -> type | None:
    """The JSON kind a declared field must have (None: any, checked by the decoder)."""
    if annotation in _KINDS:
        return annotation
    origin = getattr(annotation, "__origin__", None)
    if origin is NotRequired:
        return _kind(annotation.__args__[0])
    if isinstance(annotation, type) and issubclass(annotation, dict):  # a TypedDict: Ref
        return dict
    return None


def _fields(message: type) -> dict[str, type | None]:
    return {name: _kind(a) for name, a in get_type_hints(message, include_extras=True).items()}


_DECLARED = {op: _fields(t) for op, t in {**TO_DELIVERABLE, **TO_TEST}.items()}
_REQUIRED = {
    op: frozenset(
        name
        for name, a in get_type_hints(t, include_extras=True).items()
        if getattr(a, "__origin__", None) is not NotRequired
    )
    for op, t in {**TO_DELIVERABLE, **TO_TEST}.items()
}


def check_request(msg: dict[str, Any], served: dict[str, type]) -> str:
    """The request's ``op``, once ``msg`` is one of the ``served`` operations with every field
    it declares present and of its kind (a bool is not an int here).

    Raises:
        WireError: an operation this side does not serve, or a field missing or of a wrong kind.
    """
    op = msg.get("op")
    if not isinstance(op, str) or op not in served:
        raise WireError(f"a request this side does not serve: {str(op)[:40]!r}")
    fields = _DECLARED[op]
    missing = _REQUIRED[op] - msg.keys()
    if missing:
        raise WireError(f"a {op!r} request without {sorted(missing)}")
    for name, value in msg.items():
        if name not in fields:
            raise WireError(f"a {op!r} request with an unknown field {str(name)[:40]!r}")
        kind = fields[name]
        if kind is not None and (type(value) is not kind):
            raise WireError(f"a {op!r} request whose {name!r} is not a {kind.__name__}")
    return op
