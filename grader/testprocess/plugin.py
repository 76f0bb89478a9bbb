"""The grader as a pytest plugin (registered through the ``pytest11`` entry point).

It adds to any pytest run:

- markers ``points``, ``number``, ``visibility``, ``tags`` and ``leaderboard``;
- the ``check`` fixture for partial credit: each ``with check("label"):`` block is one part of the
  test, a failing part is recorded and the test goes on, the score is the fraction that passed;
- the ``award`` fixture for a sliding scale (points by accuracy) and ``record_leaderboard``;
- ``--impl``: which implementation tree (reference, template, a submission) the tests import;
- in a grading child: a JSON event stream to the parent (``--grader-events``), a manifest written at
  collection (``--grader-manifest``), and an ordered subset of tests to run (``--grader-only``).

A plain ``pytest tests/...`` run also prints the points earned, so the suites stay usable by hand.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.records import VISIBILITIES, TestMeta, TestResult
from grader.testprocess import deliverables
from grader.testprocess.failure_messages import (
    FAILED,
    cause_of,
    describe,
    kind_of,
    test_kind,
    truncate,
)
from grader.testprocess.preload import SHARED

MARKERS = (
    "points(n): the test's maximum score (default 1).",
    "number(s): Gradescope ordering number of the test, e.g. '1.2'.",
    "visibility(v): one of visible, hidden, after_due_date, after_published (default visible).",
    "tags(*names): Gradescope tags of the test.",
    "leaderboard(name, order='desc'): the test reports a value with the record_leaderboard fixture.",
    "slow(reason): a long test (e.g. an artifact check); mutant runs skip it unless they name it.",
    "trusted(reason): runs no student code at all (it may read submitted files, e.g. weights, "
    "through the graded_tree fixture, and held-out data); importing a deliverable fails in it.",
    "reference_only(reason): compares with the instructor's implementation (tests/twin.py), which "
    "handouts do not carry: its file is left out of them; Gradescope runs it as any other.",
)
CAPTURED_CHARS = 1500  # of a student's own prints, per stream and test

# Start-up (pytest loads this module first): torch, Hypothesis and the test modules make millions
# of objects that live as long as the run, and the cyclic collector walked them again at every
# threshold — 0.4 s of each grading child's start at one core. Off until the collection is over,
# when what was loaded is frozen (pytest_collection_finish); back on at once in any other run
# (pytest_configure: an xdist controller, for one, never collects).
gc.disable()


@dataclass
class Part:
    label: str
    passed: bool
    message: str = ""
    failure: BaseException | None = None


class Checks:
    """Partial credit within one test: ``with check("row [1, 2]"): ...`` is one part.

    A failing part is recorded and swallowed so that later parts still run. Only ordinary
    exceptions (and ``SystemExit``) are swallowed: a time-out or an interrupt still ends the test.
    """

    def __init__(self, impl_root: Path | None) -> None:
        self.parts: list[Part] = []
        self.escaped_from_part = False
        self._impl_root = impl_root

    @contextmanager
    def __call__(self, label: str) -> Iterator[None]:
        try:
            yield
        except (Exception, SystemExit) as exc:
            self.parts.append(Part(label, False, describe(exc, self._impl_root), exc))
        except BaseException as exc:  # pytest-timeout's Failed, KeyboardInterrupt, skip
            message = f"stopped here: {describe(exc, self._impl_root)}"
            self.parts.append(Part(label, False, message, exc))
            self.escaped_from_part = True
            raise
        else:
            self.parts.append(Part(label, True))

    @property
    def passed(self) -> int:
        return sum(p.passed for p in self.parts)

    def summary(self) -> str:
        lines = [f"{self.passed} of {len(self.parts)} checks passed:"]
        for p in self.parts:
            lines.append(f"  {'✓' if p.passed else '✗'} {p.label}")
        by_message: dict[str, list[str]] = {}  # one stub error repeated 5 times says nothing new
        for p in self.parts:
            if not p.passed:
                by_message.setdefault(p.message, []).append(p.label)
        for message, labels in by_message.items():
            lines.append(f"\n✗ {'; '.join(labels)}:\n{message}")
        return "\n".join(lines)


@dataclass
class _Running:
    """What the plugin gathers about one test across its setup, call and teardown."""

    meta: TestMeta
    fraction: float | None = None  # None until the call phase reports
    messages: list[str] = field(default_factory=list)
    captured: list[str] = field(default_factory=list)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    staff_notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    failures: list[BaseException] = field(default_factory=list)  # for its kind and cause


AWARD_KEY = pytest.StashKey[tuple[float, str]]()
CHECKS_KEY = pytest.StashKey[Checks]()
LEADERBOARD_KEY = pytest.StashKey[list]()
STAFF_KEY = pytest.StashKey[list]()
STATE_KEY = pytest.StashKey["GradingSession"]()


def _resolve_impl(config: pytest.Config) -> Path:
    impl = config.getoption("impl") or os.environ.get("GRADER_IMPL") or config.getini("grader_impl")
    path = Path(impl)
    if not path.is_absolute():
        path = config.rootpath / path
    return path.resolve()


# --------------------------------------------------------------------------- options and markers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "course-kit grading")
    group.addoption(
        "--impl",
        default=None,
        help="implementation tree the tests import: a folder holding the assignment packages "
        "(default: $GRADER_IMPL, else the ini value grader_impl).",
    )
    parser.addini(
        "grader_impl", "default implementation tree, relative to rootdir", default="reference"
    )
    group.addoption(
        "--grader-manifest", default=None, help="write the collected tests' metadata here."
    )
    group.addoption("--grader-events", type=int, default=None, help="(internal) event pipe fd.")
    group.addoption("--grader-only", default=None, help="(internal) JSON list of node ids to run.")
    group.addoption(
        "--grader-mode",
        choices=("in-process", "graded"),
        default="in-process",
        help="(internal) 'graded': a grading child (student code in a deliverable process of its "
        "own; trusted checks last, after that process has ended).",
    )
    group.addoption(
        "--grader-defer-trusted",
        action="store_true",
        help="(internal) with --grader-mode graded: list trusted checks but leave them to a "
        "child of their own (--grader-checks-only), started after this one has ended.",
    )
    group.addoption(
        "--grader-checks-only",
        action="store_true",
        help="(internal) with --grader-mode graded: a child for trusted checks alone; it starts "
        "no deliverable process and preloads nothing, and every test in it is refused student code.",
    )
    group.addoption(
        "--grader-boundary",
        action="store_true",
        help="run deliverables in a process of their own (as when grading), not in this one.",
    )
    group.addoption(
        "--grader-user",
        default=None,
        help="(internal) the unprivileged user the deliverable process runs as (needs root).",
    )
    group.addoption(
        "--grader-python",
        default=None,
        help="(internal) the interpreter of the deliverable process (one the student user can run).",
    )
    group.addoption(
        "--grader-preload",
        default="",
        help="(internal) comma-separated modules to import before the deliverable process forks.",
    )
    group.addoption(
        "--grader-absent",
        default="",
        help="(internal) comma-separated packages this assignment's install lacks: not importable.",
    )
    group.addoption(
        "--grader-limits",
        default=None,
        help="(internal) JSON limits of the deliverable process (memory_bytes, file_bytes, ...).",
    )
    group.addoption(
        "--grader-visible-only",
        action="store_true",
        help="deselect tests whose visibility is not 'visible' (what students run).",
    )


class _Absent:
    """Refuses to import packages the assignment's install leaves out (pyproject.toml's extras
    its assignment.toml does not name), as if they were not installed: a test or student code
    that needs one fails here as it would in the handout's and the autograder's environment."""

    def __init__(self, names: list[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, name: str, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(
                f"No module named {name!r}: this assignment's install does not include it "
                "(pyproject.toml extras; tests/<assignment>/assignment.toml [install] extras)",
                name=name,
            )
        return None


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if config.getoption("grader_events") is not None:  # a grading child: out of student reach
        from grader.sandbox import not_dumpable

        not_dumpable()
    absent = [n for n in config.getoption("grader_absent").split(",") if n]
    if absent:  # before any test module is imported
        sys.meta_path.insert(0, _Absent(absent))
        # and forgotten if something loaded it already (a zygote's preload: sympy, which torch
        # loads on the first backward pass, imports colorsys): what held it keeps its reference,
        # a new import is refused
        for name in [m for m in sys.modules if m.partition(".")[0] in absent]:
            del sys.modules[name]
    session = GradingSession(config)
    config.stash[STATE_KEY] = session
    config.pluginmanager.register(session, "grader-session")
    if session.boundary_wanted:
        deliverables.use(deliverables.ThroughBoundary(session))
    else:
        gc.enable()  # only a grading child starts with it off (one that collects for sure)
        # Tests import deliverables by module name from the graded tree. It goes *last* on
        # sys.path, so a submission can never shadow torch, numpy or the kit's test helpers.
        sys.path.append(str(session.impl_root))
        deliverables.use(deliverables.InProcess())


def meta_of(item: pytest.Item) -> TestMeta:
    """Read a test's grading metadata from its markers."""

    def marker_arg(name: str, default: Any = None) -> Any:
        m = item.get_closest_marker(name)
        return m.args[0] if m and m.args else default

    visibility = marker_arg("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise pytest.UsageError(f"{item.nodeid}: visibility {visibility!r} not in {VISIBILITIES}")
    tags_marker = item.get_closest_marker("tags")
    board = item.get_closest_marker("leaderboard")
    doc = (
        (getattr(item, "obj", None).__doc__ or "").strip().splitlines()
        if hasattr(item, "obj")
        else []
    )
    name = doc[0].strip() if doc else getattr(item, "originalname", item.name)
    suffix = item.name[len(getattr(item, "originalname", item.name)) :]
    timeout = marker_arg("timeout", None)
    if timeout is None and item.config.getini("timeout"):
        timeout = float(item.config.getini("timeout"))
    return TestMeta(
        nodeid=item.nodeid,
        name=name + suffix,
        max_score=float(marker_arg("points", 1.0)),
        number=None if marker_arg("number") is None else str(marker_arg("number")),
        visibility=visibility,
        tags=tuple(tags_marker.args) if tags_marker else (),
        timeout=None if timeout is None else float(timeout),
        leaderboard=(
            {"name": board.args[0], "order": board.kwargs.get("order", "desc")} if board else None
        ),
        slow=item.get_closest_marker("slow") is not None,
        trusted=item.get_closest_marker("trusted") is not None,
        reference_only=item.get_closest_marker("reference_only") is not None,
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def check(request: pytest.FixtureRequest) -> Checks:
    """Partial credit: ``with check("label"):`` wraps one part of a test."""
    checks = Checks(request.config.stash[STATE_KEY].impl_root)
    request.node.stash[CHECKS_KEY] = checks
    return checks


@pytest.fixture
def graded_tree(request: pytest.FixtureRequest) -> Path:
    """The folder of the graded implementation tree (it holds the assignment packages), for
    tests that read submitted files — weights, predictions — without importing student code."""
    return request.config.stash[STATE_KEY].impl_root


class _SharedFactory:
    """``shared_tmp_path_factory``: ``mktemp(name)`` folders that student code can read."""

    def __init__(self, make) -> None:
        self._make = make

    def mktemp(self, basename: str, numbered: bool = True) -> Path:
        return self._make(basename)


@pytest.fixture(scope="session")
def shared_tmp_path_factory(request: pytest.FixtureRequest, tmp_path_factory):
    """Like ``tmp_path_factory``, for files a test writes and student code then reads (a saved
    tiny model): when grading they live where the student's process can read, not write, them."""
    session = request.config.stash[STATE_KEY]
    if session.boundary_wanted:
        return _SharedFactory(lambda name: session.boundary.shared_dir(name))
    return tmp_path_factory


@pytest.fixture
def student_tmp_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A folder student code may write (e.g. a Trainer's ``output_dir``). What is in it after the
    call comes from student code: read it as untrusted data."""
    session = request.config.stash[STATE_KEY]
    if session.boundary_wanted:
        return session.boundary.student_dir()
    return tmp_path


@pytest.fixture
def award(request: pytest.FixtureRequest):
    """Call ``award(fraction, why)`` to score a test on a sliding scale (e.g. by accuracy).

    The test earns ``fraction`` (clamped to [0, 1]) of its points if it otherwise passes; below 1
    it is reported as failed with ``why``.
    """

    def give(fraction: float, why: str) -> None:
        request.node.stash[AWARD_KEY] = (min(max(float(fraction), 0.0), 1.0), why)

    return give


@pytest.fixture
def record_leaderboard(request: pytest.FixtureRequest):
    """Call with a number to put it on the leaderboard column named by the test's marker."""
    marker = request.node.get_closest_marker("leaderboard")
    if marker is None:
        raise pytest.UsageError(
            f"{request.node.nodeid} uses record_leaderboard without a leaderboard marker"
        )
    entries: list[dict[str, Any]] = []
    request.node.stash[LEADERBOARD_KEY] = entries

    def record(value: float | str) -> None:
        entries.append(
            {"name": marker.args[0], "value": value, "order": marker.kwargs.get("order", "desc")}
        )

    return record


@pytest.fixture
def note_for_staff(request: pytest.FixtureRequest):
    """Call with a short text for course staff (not the student): it reaches the results' flags
    (``extra_data``) and ``batch``'s flags.csv, whatever the score. Trusted checks only: what
    student code could reach, it could write."""
    if request.node.get_closest_marker("trusted") is None:
        raise pytest.UsageError(f"{request.node.nodeid}: note_for_staff is for trusted checks only")
    notes: list[str] = []
    request.node.stash[STAFF_KEY] = notes

    def note(text: str) -> None:
        notes.append(str(text))

    return note


# --------------------------------------------------------------------------- the per-run plugin


class GradingSession:
    """Per-run state and the hooks that need it; registered by ``pytest_configure``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.impl_root = _resolve_impl(config)
        self.running: dict[str, _Running] = {}
        self.results: dict[str, TestResult] = {}
        self.metas: dict[str, TestMeta] = {}
        self.collect_errors: list[dict[str, str]] = []
        fd = config.getoption("grader_events")
        self.events = os.fdopen(fd, "w", buffering=1, encoding="utf-8") if fd is not None else None
        mode = config.getoption("grader_mode")
        self.boundary_wanted = mode == "graded" or config.getoption("grader_boundary")
        self.checks_only = self.boundary_wanted and config.getoption("grader_checks_only")
        self._boundary: Any = None  # grader.boundary.client.Boundary, made on first use

    # the deliverable process ----------------------------------------------------------------

    @property
    def boundary(self):
        """The deliverable process of this run (started on first use, or at session start)."""
        if self._boundary is None:
            from grader.boundary.client import Boundary
            from grader.limits import ProcessLimits
            from grader.sandbox import child_python, lookup_user

            limits = json.loads(self.config.getoption("grader_limits") or "{}")
            from grader.data import ENV as DATA_ENV

            # The data folder stays the tests' business: student code is handed its inputs and
            # needs no data file (held-out ones are root's alone where grading counts).
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("GRADER_", "PYTEST_")) and k != DATA_ENV
            }
            user = lookup_user(self.config.getoption("grader_user"))
            self._boundary = Boundary(
                self.impl_root,
                python=self.config.getoption("grader_python") or child_python(),
                env=env,
                limits=ProcessLimits(**limits),
                user=user,
            )
        return self._boundary

    def import_module(self, name: str):  # the resolver's view of the boundary
        return self.boundary.import_module(name)

    def call(self, target, args, kwargs, guards=None):
        return self.boundary.call(target, args, kwargs, guards)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Start the deliverable process now, before any test is collected: forked from this
        # process (torch imported, nothing of the tests yet), it is ready at once — about 2 s
        # saved on every grading, as the student user too when it runs this interpreter (as on
        # Gradescope). When it cannot read this interpreter's files (a stand-in interpreter was
        # given), it starts as a fresh one instead.
        if self.boundary_wanted and not self.config.option.collectonly and not self.checks_only:
            python = self.config.getoption("grader_python")
            fork = not python or os.path.abspath(python) == os.path.abspath(sys.executable)
            for name in SHARED:  # torch's own: here unless this install lacks a part
                with contextlib.suppress(ImportError):
                    importlib.import_module(name)
            for name in filter(None, self.config.getoption("grader_preload").split(",")):
                if fork:  # shared with the forked process, and loaded there already
                    importlib.import_module(name)
            # What is loaded now (torch, transformers, the kit) lives for the whole run: frozen,
            # the collection after every test (release_memory) skips it — 0.2 s a test saved on
            # each side of the boundary, as the forked process inherits the frozen heap.
            gc.collect()
            gc.freeze()
            try:
                self.boundary.start(fork=fork)
            except Exception:  # the first test that needs it reports why (it tries again)
                pass

    def emit(self, **event: Any) -> None:
        if self.events is not None:
            self.events.write(json.dumps(event) + "\n")
            self.events.flush()

    # collection ----------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_collection(self, session: pytest.Session):
        deliverables.set_collecting(True)
        try:
            return (yield)
        finally:
            deliverables.set_collecting(False)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(
                {"nodeid": report.nodeid, "error": truncate(report.longreprtext)}
            )

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        only = config.getoption("grader_only")
        if only:
            wanted = json.loads(Path(only).read_text())
            by_id = {item.nodeid: item for item in items}
            keep = [by_id[n] for n in wanted if n in by_id]
            kept = {id(i) for i in keep}
            config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
            items[:] = keep
        if config.getoption("grader_visible_only"):
            hidden = [i for i in items if meta_of(i).visibility != "visible"]
            config.hook.pytest_deselected(items=hidden)
            items[:] = [i for i in items if i not in hidden]
        self.metas = {item.nodeid: meta_of(item) for item in items}
        if self.boundary_wanted:  # trusted checks last: they run once student code has ended
            items.sort(key=lambda i: self.metas[i.nodeid].trusted)
        if self.boundary_wanted and config.getoption("grader_defer_trusted"):
            # Listed (the manifest has them), run by a child of their own after this one.
            deferred = [i for i in items if self.metas[i.nodeid].trusted]
            config.hook.pytest_deselected(items=deferred)
            items[:] = [i for i in items if not self.metas[i.nodeid].trusted]

    def _wait_for_boundary(self, items: list[pytest.Item]) -> None:
        """Before the first test's clock starts: the deliverable process is up (its start-up is
        never counted against a test's time limit)."""
        if self._boundary is None or self.config.option.collectonly:
            return
        if any(not self.metas[i.nodeid].trusted for i in items if i.nodeid in self.metas):
            try:
                self._boundary.ready()
            except Exception:  # the first test that needs it reports why
                pass

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        path = self.config.getoption("grader_manifest")
        if path:
            manifest = {
                "tests": [m.to_json() for m in self.metas.values()],
                "errors": self.collect_errors,
            }
            Path(path).write_text(json.dumps(manifest, indent=1))
        self.emit(
            event="collected",
            tests=[m.to_json() for m in self.metas.values()],
            errors=self.collect_errors,
        )
        if self.boundary_wanted:  # a grading child: the tests' modules (and
            gc.collect()  # what they imported) live for the whole run; frozen, as at the start
            gc.freeze()
        gc.enable()  # off since this module was loaded
        self._wait_for_boundary(session.items)

    # running -------------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        meta = self.metas.get(nodeid)
        if meta is not None:
            self.running[nodeid] = _Running(meta)
        if self.boundary_wanted:
            if self.checks_only or meta is not None and meta.trusted:
                deliverables.use(deliverables.Refused("a trusted check runs no student code"))
                # Student code has ended before a trusted check starts: nothing of it (a thread
                # left spinning, a process it started) shares the machine's CPU or memory with
                # the check, and the check's time is its own.
                if self._boundary is not None:
                    self._boundary.stop()
            else:
                deliverables.use(deliverables.ThroughBoundary(self))
                self.boundary.begin_test(meta.timeout if meta is not None else None)
        self.emit(event="start", nodeid=nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        run = self.running.get(item.nodeid)
        if run is not None:
            self._score_phase(run, item, call, report)
        return report

    def _score_phase(self, run: _Running, item: pytest.Item, call: pytest.CallInfo, report) -> None:
        checks = item.stash.get(CHECKS_KEY, None)
        error = (
            describe(call.excinfo.value, self.impl_root, run.meta.trusted) if call.excinfo else ""
        )
        if call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
            run.failures.append(call.excinfo.value)
        if call.when == "call" and checks is not None and checks.parts:
            run.failures[:0] = [p.failure for p in checks.parts if p.failure is not None]
            escaped_outside = call.excinfo is not None and not checks.escaped_from_part
            run.fraction = checks.passed / (len(checks.parts) + escaped_outside)
            if report.passed and checks.passed < len(checks.parts):
                report.outcome = "failed"
                report.longrepr = checks.summary()
            if not report.passed:
                run.messages.append(checks.summary())
                if escaped_outside:
                    run.messages.append(error)
        elif call.when == "call" and report.passed and AWARD_KEY in item.stash:
            run.fraction, why = item.stash[AWARD_KEY]
            if run.fraction < 1.0:
                report.outcome = "failed"
                report.longrepr = why
                run.messages.append(why)
        elif call.when == "call":
            run.fraction = 1.0 if report.passed else 0.0
            if error and not report.skipped:
                run.messages.append(error)
        if report.skipped:
            reason = (
                report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            )
            run.fraction = 0.0
            run.messages.append(f"Skipped, so no points: {reason}")
        elif report.failed and call.when != "call":
            run.messages.append(f"Error during {call.when}: {error or report.longreprtext}")
            if call.when == "setup":
                run.fraction = 0.0
        if call.when == "call":
            # A trusted check runs no student code: what it printed is the check's own (a
            # library's load report), not "your code".
            whose = "the check" if run.meta.trusted else "your code"
            for stream, text in (("stdout", report.capstdout), ("stderr", report.capstderr)):
                if text:
                    run.captured.append(
                        f"--- {whose} printed ({stream}) ---\n{truncate(text, CAPTURED_CHARS)}"
                    )
        if call.when == "teardown":
            run.leaderboard = list(item.stash.get(LEADERBOARD_KEY, []))
            run.staff_notes = list(item.stash.get(STAFF_KEY, []))

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple) -> None:
        printed = self._boundary.end_test() if self._boundary is not None else ""
        run = self.running.pop(nodeid, None)
        if run is not None:
            self._report(nodeid, run, printed)
            del run  # its failures hold tracebacks: frames and the tensors in them
        if self.boundary_wanted:  # a grading child: keep the peak low
            from grader.sandbox import release_memory

            # What the test left is garbage before the collection, never frozen with what lives
            # on (release_memory freezes the survivors): the failure pytest keeps for post-mortem
            # debugging (sys.last_*, which no grading child does) too.
            for name in ("last_type", "last_value", "last_traceback", "last_exc"):
                with contextlib.suppress(AttributeError):
                    delattr(sys, name)
            release_memory()

    def _report(self, nodeid: str, run: _Running, printed: str) -> None:
        if printed:
            run.captured.append(f"--- your code printed ---\n{truncate(printed, CAPTURED_CHARS)}")
        fraction = run.fraction or 0.0  # a test with no result is never counted as passed
        kind = cause = ""
        if fraction < 1.0:
            kind = test_kind({kind_of(e) for e in run.failures}) if run.failures else FAILED
            first = next((e for e in run.failures if kind_of(e) == kind), None)
            cause = cause_of(first, self.impl_root) if first is not None else ""
        result = TestResult(
            nodeid=nodeid,
            score=round(run.meta.max_score * fraction, 4),
            status="passed" if fraction == 1.0 else "failed",
            output=truncate("\n".join(run.messages + run.captured)),
            duration=round(time.monotonic() - run.started, 3),
            leaderboard=run.leaderboard,
            staff_notes=run.staff_notes,
            kind=kind,
            cause=cause,
        )
        self.results[nodeid] = result
        self.emit(event="result", **result.to_json())

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._boundary is not None:
            self._boundary.close()
        self.emit(event="done")

    def pytest_terminal_summary(
        self, terminalreporter, exitstatus: int, config: pytest.Config
    ) -> None:
        graded = [n for n in self.results if n in self.metas]
        if not any(self.metas[n].max_score != 1.0 or self.metas[n].number for n in graded):
            return  # not a graded suite (e.g. the kit's own tests): no points line
        score = sum(self.results[n].score for n in graded)
        total = sum(self.metas[n].max_score for n in graded)
        terminalreporter.write_sep("=", f"points: {score:g} / {total:g} (graded: {self.impl_root})")
