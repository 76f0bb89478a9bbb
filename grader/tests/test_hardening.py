"""Hardening against hostile submissions, where one graded submission of the red-team corpus
(``test_redteam.py``) cannot say it all: attacks on the engine's own parts (the event pipe of a
pytest child, the wire decoder, the user sweep), a full disk under
``run_autograder``, grading without a user switch, and a property over the mutant catalogue.

As root, student code runs as unprivileged users of this module's own (``kithard*``: a sweep of
one run never touches another test module's), through an interpreter they can run; tests that
need that switch (or a tmpfs mount) are skipped, saying why, otherwise.
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

import grader
from grader import course, sandbox
from grader.boundary.wire import Decoder, WireError
from grader.commands import autograder, selfcheck
from grader.controller import grading, mutant_hints, pipeline, results_json, runner
from grader.controller.runner import Manifest, collect
from grader.limits import Caps, Limits
from grader.tests.conftest import (
    SYSTEM_PYTHON,
    disk_filler,
    processes_of_user,
    small_tmpfs,
    standin_python,
)

A = "a1_lm_basics"
AS_ROOT = os.geteuid() == 0 and SYSTEM_PYTHON.exists()
needs_root = pytest.mark.skipif(
    not AS_ROOT,
    reason="needs root and /usr/bin/python3.11: student code runs as an unprivileged user of its "
    "own, as on Gradescope",
)
USERS = ("kithard1", "kithard2")  # not the corpus's: one module's sweep never kills another's run
SOLO = "kithard-solo"  # a non-root instructor: grades, and runs student code, as itself
LIMITS = Limits(test_timeout=30, grace=5, exit_wait=1.0)  # room for a loaded machine
TOY = Path(__file__).parent / "toy"
SUITE = [TOY / "toy_suite.py"]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _folder(prefix: str) -> Path:
    """A temporary folder the student users can reach (pytest's own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def _readable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def _uid(name: str) -> int:
    return sandbox.lookup_user(sandbox.ensure_user(name))[0]


def _strict_results(path: Path) -> dict:
    """results.json as Gradescope reads it: there, strict JSON (no NaN), valid, under 1 MB."""
    text = path.read_text()
    assert len(text.encode()) < 1_000_000
    data = json.loads(text, parse_constant=_reject_constant)
    results_json.validate(data)
    return data


@pytest.fixture(scope="module")
def kit_python():
    """``runner.PYTHON``, while these tests run: an interpreter the student users can run (this
    venv's may live under /root), with this venv's packages and the kit."""
    if not AS_ROOT:
        yield None
        return
    root = _folder("hardening-python-")
    saved = runner.PYTHON
    runner.PYTHON = str(standin_python(root / "venv", editable_kit=True))
    try:
        yield runner.PYTHON
    finally:
        runner.PYTHON = saved
        shutil.rmtree(root, ignore_errors=True)


def _mutated(root: Path, mutant: mutant_hints.Mutant, extra: str = "") -> Path:
    """The reference with ``mutant`` applied as ``grader.commands.selfcheck`` applies it, and ``extra`` code
    appended to the mutated module (after its definitions, so it can wrap them)."""
    package = root / "tree" / A
    shutil.copytree(
        course.REFERENCE / A, package, ignore=shutil.ignore_patterns("__pycache__", "artifacts")
    )
    selfcheck.apply(mutant, package)
    if extra:
        target = package / mutant.file
        target.write_text(target.read_text() + "\n\n" + textwrap.dedent(extra))
    _readable(root)
    return root / "tree"


def _manifest_of(mutant: mutant_hints.Mutant, manifests: dict) -> tuple[Manifest, set[str]]:
    """The tests ``mutant`` breaks, and their files (as selfcheck._run_mutant, narrowed to them)."""
    files = {b.split("::")[0] for b in mutant.breaks}
    key = tuple(sorted(files))
    if key not in manifests:
        manifests[key] = collect([course.TESTS / A / f for f in key], LIMITS)
    tests = [m for m in manifests[key].tests if mutant_hints.test_key(m.nodeid) in mutant.breaks]
    return Manifest(tests, manifests[key].errors), files


# ----------------------------------------------------------------------------------------------
# A property over the mutant catalogue: an attack (reading the test's frames, forging events,
# patching the helpers, forging write-backs of the arguments) never raises a wrong submission's
# score.

# Three mutants in `make test`; KIT_MUTANT_PROPERTY=all runs every mutant of assignment 1's
# catalogue (`make hardening-all`, about 10 minutes on two cores).
SAMPLE = (
    tuple(m.id for m in mutant_hints.load(A))
    if os.environ.get("KIT_MUTANT_PROPERTY") == "all"
    else ("softmax-wrong-axis", "relative-error-signed", "dan-divides-by-T")
)

INTROSPECTION = '''
import functools as _ft, gc as _gc, inspect as _inspect, sys as _sys

_KEYS = ("expected", "want", "wanted", "oracle", "reference", "pooled", "truth")
_TEST_MODULES = ("test_", "compare", "strategies", "conftest")


_calls = [0]


def _candidates():
    """Whatever in this process could be the tests' expected value: locals of every frame (this
    thread's, every other thread's, inspect.stack()'s) with an oracle's name, and (the first few
    times: it is slow) every object gc knows whose module is a test module."""
    _calls[0] += 1
    frames = [_sys._getframe(), *_sys._current_frames().values()]
    try:
        frames += [i.frame for i in _inspect.stack(0)]
    except Exception:
        pass
    for f in frames:
        while f is not None:
            for name, value in list(f.f_locals.items()):
                if name in _KEYS:
                    yield value
            f = f.f_back
    for obj in _gc.get_objects() if _calls[0] <= 5 else ():
        try:
            if str(getattr(obj, "__module__", "") or "").startswith(_TEST_MODULES):
                yield obj
        except Exception:
            pass


def _steal(result):
    for value in _candidates():
        try:
            value = value() if callable(value) else value
        except Exception:
            continue
        if type(value) is type(result) and value is not result:
            return value  # the test's own answer, if it were here
    return result


def _stealing(fn):
    @_ft.wraps(fn)
    def wrapper(*args, **kwargs):
        return _steal(fn(*args, **kwargs))
    return wrapper


for _name, _obj in list(globals().items()):
    if _name[0] != "_" and callable(_obj) and not isinstance(_obj, type) \\
            and getattr(_obj, "__module__", None) == __name__:
        globals()[_name] = _stealing(_obj)
_steal(None)
'''

FORGED_EVENTS = """
import json as _json, os as _os, stat as _stat, threading as _threading, time as _time


def _forge(nodeids):
    line = "".join(_json.dumps(e) + "\\n" for n in nodeids for e in (
        {"event": "start", "nodeid": n},
        {"event": "result", "nodeid": n, "score": 1e9, "status": "passed", "output": "forged"},
    )).encode()
    targets = []
    for pid in [p for p in _os.listdir("/proc") if p.isdigit()]:
        try:
            targets += [f"/proc/{pid}/fd/{n}" for n in _os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            pass
    for path in targets:  # every pipe and file this process may open (never the protocol's socket)
        try:
            fd = _os.open(path, _os.O_WRONLY | _os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if not _stat.S_ISSOCK(_os.fstat(fd).st_mode):
                _os.write(fd, line)
        except OSError:
            pass
        finally:
            _os.close(fd)


def _forger(nodeids):
    for _ in range(300):
        _forge(nodeids)
        _time.sleep(0.05)


_threading.Thread(target=_forger, args=(NODEIDS,), daemon=True).start()
"""

PATCHED_HELPERS = """
import sys as _sys

import numpy.testing as _npt
import torch as _torch

try:
    import grader.testprocess.comparison_messages as _messages

    _messages.close_message = _messages.equal_message = _messages.at_most_message = lambda *a, **k: None
except Exception:
    pass
_sys.path.append(KIT_TESTS)  # the tests' own helper, imported here to be disabled
try:
    import compare as _compare

    _compare.assert_close = _compare.assert_equal = _compare.assert_at_most = lambda *a, **k: None
except Exception:
    pass
_torch.testing.assert_close = lambda *a, **k: None
_torch.allclose = lambda *a, **k: True
_torch.equal = lambda *a, **k: True
_npt.assert_allclose = _npt.assert_array_equal = lambda *a, **k: None
"""

# Forged write-back: the server loop (patched from the student's module) claims that every
# argument was handed over as mutable, and every function zeroes its floating-point arguments in
# place before computing. Were the change applied to the test's own tensors, an oracle computed
# after the call would see zeros too, and agree with many a wrong function (a masked mean, a
# relative error); the test process applies changes only to arguments it handed over itself.
FORGED_WRITEBACK = """
import functools as _ft, sys as _sys

import torch as _torch

_server = next((m for m in (_sys.modules.get("__main__"), _sys.modules.get("grader.boundary.server"))
                if m is not None and hasattr(m, "Server")), None)
if _server is not None:
    _run = _server.Server._run

    def _claims_every_argument(self, msg, blob, function):
        return _run(self, dict(msg, mutable=[[0], [1]]), blob, function)

    _server.Server._run = _claims_every_argument


def _zeroing(fn):
    @_ft.wraps(fn)
    def wrapper(*args, **kwargs):
        for a in [*args, *kwargs.values()]:
            if isinstance(a, _torch.Tensor) and a.is_floating_point():
                with _torch.no_grad():
                    a.zero_()
        return fn(*args, **kwargs)
    return wrapper


for _name, _obj in list(globals().items()):
    if _name[0] != "_" and callable(_obj) and not isinstance(_obj, type) \\
            and getattr(_obj, "__module__", None) == __name__:
        globals()[_name] = _zeroing(_obj)
"""


def _attack(name: str, mutant: mutant_hints.Mutant) -> str:
    nodeids = [f"tests/{A}/{b}" for b in mutant.breaks]
    return {
        "introspection": INTROSPECTION,
        "forged-events": FORGED_EVENTS.replace("NODEIDS", repr(nodeids)),
        "patched-helpers": PATCHED_HELPERS.replace("KIT_TESTS", repr(str(course.TESTS))),
        "forged-writeback": FORGED_WRITEBACK,
    }[name]


ATTACKS = ("introspection", "forged-events", "patched-helpers", "forged-writeback")


@pytest.fixture(scope="module")
def mutant_scores(kit_python) -> dict[tuple[str, str | None], dict[str, tuple[float, float]]]:
    """Each sampled mutant graded alone and with each attack, on the tests it breaks only."""
    if not AS_ROOT:
        pytest.skip(
            "the property is about grading as on Gradescope: needs root to run student "
            "code as a user of its own"
        )
    catalogue = {m.id: m for m in mutant_hints.load(A)}
    manifests: dict = {}
    lanes: queue.Queue[str] = queue.Queue()
    for user in USERS:
        lanes.put(sandbox.ensure_user(user))
    runs = [(m, a) for m in SAMPLE for a in (None, *ATTACKS)]
    for m in SAMPLE:  # collected once, before the lanes start
        _manifest_of(catalogue[m], manifests)
    root = _folder("hardening-mutants-")

    def grade(run: tuple[str, str | None]) -> dict[str, tuple[float, float]]:
        mutant = catalogue[run[0]]
        tree = _mutated(
            root / f"{run[0]}-{run[1]}", mutant, _attack(run[1], mutant) if run[1] else ""
        )
        manifest, files = _manifest_of(mutant, manifests)
        user = lanes.get()
        try:
            g = grading.grade(
                A, tree, hidden=True, limits=LIMITS, manifest=manifest, files=files, user=user
            )
        finally:
            lanes.put(user)
        return {
            mutant_hints.test_key(m.nodeid): (g.results[m.nodeid].score, m.max_score)
            for m in g.metas
        }

    start = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(USERS)) as pool:
            scores = dict(zip(runs, pool.map(grade, runs), strict=True))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(runs)} gradings of mutants in {time.monotonic() - start:.0f} s")
    return scores


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("mutant", SAMPLE)
def test_an_attack_never_raises_a_mutants_score(mutant_scores, mutant, attack):
    honest, attacked = mutant_scores[(mutant, None)], mutant_scores[(mutant, attack)]
    catalogue = {m.id: m for m in mutant_hints.load(A)}
    assert set(honest) == set(attacked) == set(catalogue[mutant].breaks)
    for test, (score, most) in honest.items():
        assert score < most, f"the mutant itself should lose points on {test}"
    for test, (score, _) in attacked.items():
        assert score <= honest[test][0], (
            f"{test}: {score} with the attack, {honest[test][0]} without"
        )


# ----------------------------------------------------------------------------------------------
# Forged events where student code can reach the grader's pipe.

SOLO_SCRIPT = """
import json, sys
from pathlib import Path
from grader.controller import grading
from grader import course
from grader.limits import Limits
from grader.controller.runner import Manifest, collect

tree, only = Path(sys.argv[1]), set(sys.argv[2].split(","))
paths = [course.TESTS / "a1_lm_basics" / "test_softmax.py"]
limits = Limits(test_timeout=30, grace=5, exit_wait=1.0)
manifest = collect(paths, limits)
manifest = Manifest([m for m in manifest.tests if m.nodeid.rsplit("::", 1)[1] in only], [])
g = grading.grade("a1_lm_basics", tree, hidden=True, limits=limits, manifest=manifest,
                      files={"test_softmax.py"})
print(json.dumps({m.nodeid.rsplit("::", 1)[1]: g.results[m.nodeid].score for m in g.metas}))
"""

TO_THE_PARENTS_PIPE = '''
import json as _json, os as _os

_NAMES = ("test_softmax_rows", "test_softmax_any_shape_and_dim", "test_cross_entropy_values")


def _forge_results():
    """Write a full-marks result for every test into the pipe of the process that runs the tests
    (found through /proc: its command line names the pipe's fd)."""
    ppid = _os.getppid()
    try:
        argv = open(f"/proc/{ppid}/cmdline", "rb").read().split(b"\\0")
        fd = _os.open(f"/proc/{ppid}/fd/{int(argv[argv.index(b'--grader-events') + 1])}", _os.O_WRONLY)
    except (OSError, ValueError) as exc:
        print("the grader's pipe is out of reach:", exc)
        return
    for name in _NAMES:
        event = {"event": "result", "nodeid": f"tests/a1_lm_basics/test_softmax.py::{name}",
                 "score": 99, "status": "passed"}
        _os.write(fd, (_json.dumps(event) + "\\n").encode())
    _os.close(fd)


_wrong_softmax = softmax


def softmax(x, dim=-1):
    _forge_results()
    return _wrong_softmax(x, dim)
'''


def _solo_grade(tree: Path, only: list[str], kit_python: str | None) -> dict[str, float]:
    """Grade as a non-root instructor does (no user switch: student code runs as the grader)."""
    if not AS_ROOT:  # already such an instructor
        paths = [course.TESTS / A / "test_softmax.py"]
        manifest = collect(paths, LIMITS)
        manifest = Manifest([m for m in manifest.tests if m.nodeid.rsplit("::", 1)[1] in only], [])
        g = grading.grade(
            A, tree, hidden=True, limits=LIMITS, manifest=manifest, files={"test_softmax.py"}
        )
        return {m.nodeid.rsplit("::", 1)[1]: g.results[m.nodeid].score for m in g.metas}
    uid = _uid(SOLO)
    home = _folder("hardening-solo-")
    os.chown(home, uid, uid)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADER_", "PYTEST_"))}
    env.update(HOME=str(home), TMPDIR=str(home), GRADER_CHILD_PYTHON=kit_python)
    try:
        done = subprocess.run(
            [kit_python, "-c", SOLO_SCRIPT, str(tree), ",".join(only)],
            user=uid,
            group=uid,
            extra_groups=[],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        sandbox.sweep_user(uid)
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(600)
def test_forged_events_gain_nothing_without_a_user_switch(kit_python):
    catalogue = {m.id: m for m in mutant_hints.load(A)}
    wrong = catalogue["softmax-wrong-axis"]
    only = ["test_softmax_rows", "test_softmax_any_shape_and_dim", "test_cross_entropy_values"]
    root = _folder("hardening-solo-trees-")
    try:
        honest = _solo_grade(_mutated(root / "honest", wrong), only, kit_python)
        attacked = _solo_grade(
            _mutated(root / "attack", wrong, TO_THE_PARENTS_PIPE), only, kit_python
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert honest["test_softmax_rows"] == 0
    for name, score in attacked.items():
        assert score <= honest[name], f"{name}: {score} with forged events, {honest[name]} without"


FLOODER = """
import json, os, signal, stat, time

NODE = "grader/tests/toy/toy_suite.py::"


def _payload():
    board = [{"name": "negated", "value": float("nan"), "order": "asc"}] * 30000
    events = []
    if FORGE_RUNNING:  # a full-marks result for the very test that hangs
        events.append({"event": "result", "nodeid": NODE + "test_mul", "score": 1, "status": "passed",
                       "leaderboard": [{"name": "negated", "value": -1e308, "order": "asc"}]})
    events += [{"event": "start", "nodeid": NODE + "test_mul"}] * 50  # its clock, restarted?
    events += [{"event": "start", "nodeid": NODE + n} for n in ("test_mul_zero", "test_neg")]
    events += [
        {"event": "result", "nodeid": NODE + "test_neg_board", "score": float("nan"),
         "status": "passed", "leaderboard": board},
        {"event": "result", "nodeid": NODE + "test_add", "score": 99, "status": "passed",
         "leaderboard": [{"name": "negated", "value": -1e308, "order": "asc"}]},
        {"event": "collected", "tests": [], "errors": []},
    ]
    text = "".join(json.dumps(e) + "\\n" for e in events)  # NaN goes out as NaN, not JSON
    return (text + "NaN\\n" + "[" * 100000 + "\\n" + "x" * (2 << 20) + "\\n").encode()


def mul(a, b):
    payload = _payload()
    if os.fork() == 0:
        os.setsid()  # out of the process group the grader kills
        if os.fork() == 0:
            fds = []
            for fd in range(256):
                try:
                    os.fstat(fd)
                    fds.append(fd)
                except OSError:
                    pass
            end = time.monotonic() + 60
            while time.monotonic() < end:  # every inherited fd, the grader's pipe too, kept full
                for fd in fds:
                    try:
                        os.write(fd, payload)
                    except OSError:
                        pass
            os._exit(0)
        os._exit(0)
    os.wait()
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # pytest-timeout cannot stop it: the parent must
    while True:
        pass
"""


def _toy_run(forge_running: bool) -> tuple[dict, dict, float, list[int]]:
    """The toy suite run by the runner in one pytest child of the student user that imports the
    toy package itself (the runner's "in-process" mode, which grading never uses: the worst case for the
    event pipe); beta.mul floods every fd and hangs."""
    user = sandbox.ensure_user(USERS[0])
    uid = sandbox.lookup_user(user)[0]
    root = _folder("hardening-toy-")
    try:
        impl = root / "impl"
        shutil.copytree(TOY / "good", impl)
        (impl / "toy_pkg" / "beta.py").write_text(
            FLOODER.replace("FORGE_RUNNING", str(forge_running))
        )
        _readable(root)
        limits = Limits(
            grace=2.0, startup_timeout=60.0, exit_wait=1.0, run_budget=90.0, file_bytes=16 * 1024**2
        )  # the flood fills no more than that of a log
        manifest = collect(SUITE, limits)
        start = time.monotonic()
        results = runner.run(SUITE, impl, manifest, limits, user=user)
        seconds = time.monotonic() - start
        left = processes_of_user(uid)
        data = results_json.build(manifest.tests, results, execution_time=seconds)
        results_json.write(root / "results.json", data)
        data = _strict_results(root / "results.json")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {r.nodeid.rsplit("::", 1)[1]: r for r in results.values()}, data, seconds, left


@needs_root
@pytest.mark.timeout(300)
def test_a_flood_of_forged_events_from_the_pytest_child_changes_nothing(kit_python):
    """Re-sent starts, results of other tests (NaN scores, 30,000 leaderboard entries, a
    leaderboard on a test without one), garbage and a 2 MB line, on every fd, from a process of its
    own session, while the test hangs ignoring SIGALRM: the run ends in time, the hanging tests
    score 0, every other test keeps its score, results.json is valid with the one honest
    leaderboard value, and no process of the student user is left."""
    results, data, seconds, left = _toy_run(forge_running=False)
    assert seconds < 60, f"the run took {seconds:.0f} s"
    assert not left, f"processes of the student user outlived the run: {left}"
    assert results["test_mul"].score == 0 and results["test_mul_zero"].score == 0
    for name in ("test_add", "test_add_cases", "test_neg", "test_neg_board"):
        assert results[name].status == "passed", f"{name}: {results[name].output}"
    assert data["leaderboard"] == [{"name": "negated", "value": 5, "order": "asc"}]
    assert data["score"] == 5


@pytest.mark.timeout(120)
def test_a_session_that_ends_early_costs_only_the_tests_it_ran(tmp_path):
    """The toy suite in one pytest child: beta.mul raises KeyboardInterrupt, which ends the pytest
    session. Only beta's two tests may lose their points; gamma's must still run."""
    impl = tmp_path / "impl"
    shutil.copytree(TOY / "good", impl)
    (impl / "toy_pkg" / "beta.py").write_text("def mul(a, b):\n    raise KeyboardInterrupt\n")
    limits = Limits(grace=2.0, startup_timeout=60.0, exit_wait=1.0)
    results = runner.run(SUITE, impl, collect(SUITE, limits), limits)
    by = {r.nodeid.rsplit("::", 1)[1]: r for r in results.values()}
    assert by["test_mul"].score == 0 and by["test_mul_zero"].score == 0
    for name in ("test_add", "test_add_cases", "test_neg", "test_neg_board"):
        assert by[name].status == "passed", f"{name}: {by[name].output}"


@pytest.mark.timeout(120)
def test_a_child_that_cannot_start_costs_only_the_tests_not_run(tmp_path, monkeypatch):
    """beta.mul kills its process (the first child ends there); the next child cannot be started
    because the grader's own files cannot be written (a full disk, simulated): alpha's tests keep
    their points, the rest score 0 saying why, and the run returns instead of raising."""
    impl = tmp_path / "impl"
    shutil.copytree(TOY / "good", impl)
    (impl / "toy_pkg" / "beta.py").write_text("import os\n\ndef mul(a, b):\n    os._exit(3)\n")
    limits = Limits(grace=2.0, startup_timeout=60.0, exit_wait=1.0)
    manifest = collect(SUITE, limits)
    started = []
    real = runner._Child

    def child(*args, **kwargs):
        if started:
            raise OSError(28, "No space left on device")
        started.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_Child", child)
    results = runner.run(SUITE, impl, manifest, limits)
    by = {r.nodeid.rsplit("::", 1)[1]: r for r in results.values()}
    assert by["test_add"].status == by["test_add_cases"].status == "passed"
    assert by["test_mul"].score == 0 and "exited (code 3)" in by["test_mul"].output
    for name in ("test_mul_zero", "test_neg", "test_neg_board"):
        assert by[name].score == 0 and "No space left on device" in by[name].output, name


# ----------------------------------------------------------------------------------------------
# The wire: what a hostile process writes is bounded before it is built.


def test_a_reply_cannot_make_the_trusted_side_build_more_than_it_sent():
    blob = bytearray(1 << 20)
    specs = [
        {"$tensor": {"dtype": "uint8", "shape": [1 << 20], "at": 0, "n": 1 << 20, "index": i}}
        for i in range(16)
    ]
    with pytest.raises(WireError):
        Decoder(blob, None, Caps()).decode(specs)


@pytest.mark.parametrize("kind", ["bytes", "bytes and a tensor"])
def test_bytes_referenced_many_times_count_every_time(kind):
    """One 1 MiB range referenced 40 times as bytes (once took the test process to its memory
    limit: 200 MiB x 40), or as bytes and as a tensor: refused before the second copy."""
    blob = bytearray(1 << 20)
    specs: list = [{"$bytes": [0, 1 << 20]} for _ in range(40)]
    if kind != "bytes":
        specs[0] = {
            "$tensor": {"dtype": "uint8", "shape": [1 << 20], "at": 0, "n": 1 << 20, "index": 0}
        }
    with pytest.raises(WireError, match="overlap"):
        Decoder(blob, None, Caps()).decode(specs)
    assert Decoder(blob, None, Caps()).decode([{"$bytes": [0, 1 << 20]}])[0] == bytes(1 << 20)


def test_wire_caps_refuse_deep_long_and_numerous_values():
    caps = Caps(items=10_000, text_chars=1000, depth=48)
    nested: list = []
    for _ in range(200):
        nested = [nested]
    for value, why in (
        (nested, "nested too deeply"),
        (["x" * 1001], "a string of more than"),
        (list(range(10_001)), "more than 10,000 values"),
    ):
        with pytest.raises(WireError, match=why):
            Decoder(bytearray(), None, caps).decode(value)


# ----------------------------------------------------------------------------------------------
# Survivors: the sweep leaves no process of the student user.

MOVING_TARGET = """
import ctypes, os, sys, time
ready = int(sys.argv[1])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(4, 0)  # PR_SET_DUMPABLE 0: its /proc files turn root's
        os.write(ready, b"1")
        end = time.monotonic() + 60
        while time.monotonic() < end:  # a new pid every turn, a new session too
            try:
                if os.fork():
                    os._exit(0)
                os.setsid()
            except OSError:
                pass
        os._exit(0)
    os._exit(0)
os.wait()
time.sleep(60)
"""


@needs_root
def test_the_sweep_kills_a_moving_non_dumpable_daemon():
    """Every generation of the daemon holds the write end of a pipe: end of file on its read end
    proves that none is left, whatever /proc says."""
    uid = _uid(USERS[1])
    r, w = os.pipe()
    proc = subprocess.Popen(
        [str(SYSTEM_PYTHON), "-c", MOVING_TARGET, str(w)],
        user=uid,
        group=uid,
        extra_groups=[],
        pass_fds=(w,),
        cwd="/",
        stdin=subprocess.DEVNULL,
    )
    os.close(w)
    try:
        assert os.read(r, 1) == b"1"  # the daemon is forking away
        time.sleep(0.3)
        sandbox.sweep_user(uid)
        end = time.monotonic() + 10
        while time.monotonic() < end and select.select([r], [], [], 0.5)[0]:
            if os.read(r, 1 << 16) == b"":
                break
        else:
            pytest.fail("a process holding the daemon's pipe outlived the sweep")
        assert processes_of_user(uid) == []
    finally:
        os.close(r)
        sandbox.sweep_user(uid)
        proc.wait(timeout=10)


# ----------------------------------------------------------------------------------------------
# A full disk: run_autograder still leaves a valid results.json.


@pytest.fixture
def small_disk():
    """A 16 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with small_tmpfs(_folder("hardening-disk-"), "0755") as mount:
        yield mount


@needs_root
@pytest.mark.timeout(600)
def test_a_disk_filled_by_student_code_still_gets_a_valid_results_json(
    small_disk, kit_python, monkeypatch
):
    """/autograder and /tmp on one small disk (as on a grading machine); student code fills it
    at import and keeps it full: the run still ends with a valid results.json, and no process of
    the student user left. No test of test_softmax.py needs the disk, so the score is exactly
    the same wrong submission's: the grader's own processes never write to the disk to report
    (a full disk once ended every test's session: 0 points instead of 4)."""
    shared = small_disk / "tmp"  # the machine's /tmp: world-writable, on the same disk
    shared.mkdir()
    shared.chmod(0o1777)
    root = small_disk / "autograder"
    (root / "submission").mkdir(parents=True)
    wrong = next(m for m in mutant_hints.load(A) if m.id == "softmax-wrong-axis")
    source = (course.REFERENCE / A / "softmax.py").read_text().replace(wrong.find, wrong.replace)
    (root / "submission" / "softmax.py").write_text(disk_filler(shared) + source)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))  # the grader's own temporary files too
    monkeypatch.setattr(
        pipeline, "grade_upload", partial(pipeline.grade_upload, files={"test_softmax.py"})
    )
    user = sandbox.ensure_user(USERS[0])
    filled: list[int] = []  # what student code had written when the grader cleaned up after it
    cleanup = runner.remove_files_of

    def measured(uid, *args):
        filled.append(sum(p.stat().st_size for p in shared.glob("fill-*")))
        return cleanup(uid, *args)

    monkeypatch.setattr(runner, "remove_files_of", measured)
    data = autograder.run(A, root, user, LIMITS)
    written = _strict_results(root / "results" / "results.json")
    assert written["score"] == data["score"]
    assert filled and max(filled) > 8 << 20, f"student code filled only {filled} bytes"
    assert not list(shared.glob("fill-*")), "what the student's code wrote outlived its grading"
    assert not processes_of_user(sandbox.lookup_user(user)[0])
    manifest = collect([course.TESTS / A / "test_softmax.py"], LIMITS)
    honest = sum(
        m.max_score for m in manifest.tests if mutant_hints.test_key(m.nodeid) not in wrong.breaks
    )
    assert written["score"] == honest, [
        (t["name"], t["score"], t["output"][:300]) for t in written["tests"]
    ]


# ----------------------------------------------------------------------------------------------
# The interpreter of the deliverable process: one the student user can run, with the packages.


@needs_root
def test_the_student_interpreter_is_one_that_can_run_and_read_its_packages(tmp_path):
    """``interpreter_for`` keeps an interpreter the student user can start and whose torch and
    grader it can read, and stands in for one it cannot: a Python under /root (this venv's on
    this machine), the system's without torch, a venv whose packages are out of its reach."""
    ids = sandbox.lookup_user(sandbox.ensure_user(USERS[0]))
    root = _folder("hardening-interp-")
    try:
        usable = str(standin_python(root / "usable", editable_kit=True))
        assert sandbox._runs_as(usable, ids)
        assert sandbox.interpreter_for(usable, ids) == usable
        assert not sandbox._runs_as(str(SYSTEM_PYTHON), ids), "the system Python has no torch"
        hidden = root / "hidden"
        hidden.mkdir(mode=0o700)  # the packages' folder: root's alone
        shutil.copytree(Path(grader.__file__).parent, hidden / "grader")
        blocked = root / "blocked"  # torch within reach, the grader in a folder it cannot read
        assert not sandbox._runs_as(str(standin_python(blocked, hidden)), ids)
        hidden.chmod(0o755)
        assert sandbox._runs_as(str(blocked / "bin" / "python"), ids), "the probe is not the cause"
        if not sandbox._runs_as(sys.executable, ids):  # this machine: a venv under /root
            stand_in = sandbox.interpreter_for(sys.executable, ids)
            assert stand_in != sys.executable and sandbox._runs_as(stand_in, ids)
    finally:
        shutil.rmtree(root, ignore_errors=True)
