"""The command line refuses bad input at once: a clear message and exit status 2, nothing graded."""

import os
import re
import subprocess
import sys

import pytest

from coursekit import impl_root
from grader.commands import cli
from grader.course import KIT_ROOT


def _run(*args: str, cwd=KIT_ROOT, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """``python -m grader ARGS`` in ``cwd``, with ``env`` added to this environment."""
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["grade", "--impl", "/no/such/submission"], "no file or folder of that name exists"),
        (["grade", "-a", "a9_nothing"], "unknown assignment 'a9_nothing'; known: a1_lm_basics"),
        (["validate", "-a", "a9_nothing"], "unknown assignment"),
        (["mutants", "-a", "a1_lm_basics", "-j", "0"], "'0' must be above 0"),
        (["grade", "--threads", "two"], "'two' is not a number"),
        (["batch", "/no/such/folder", "-a", "a1_lm_basics"], "no file or folder '/no/such/folder'"),
        (["batch", "/tmp", "-a", "a9_nothing"], "unknown assignment"),
        (["gradescope", "-a", "a1_lm_basics", "--root", "/no/such/root"], "no folder"),
    ],
)
def test_a_bad_argument_stops_with_status_2_and_says_why(args, says):
    done = _run(*args)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_impl_is_spelt_the_same_everywhere():
    parse = cli.parser().parse_args
    assert parse(["grade", "--impl", "student_template"]).impl == "template"
    assert parse(["grade", "--impl", "template"]).impl == "template"
    assert parse(["grade", "--impl", "reference"]).impl == "reference"
    assert impl_root("template") == impl_root("student_template") == KIT_ROOT / "student_template"
    assert impl_root("reference") == KIT_ROOT / "reference"
    with pytest.raises(SystemExit) as stop:
        impl_root("/no/such/tree")
    assert stop.value.code == 2


def test_help_shows_defaults_and_version():
    done = _run("grade", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # as printed, wrapped to the terminal's width
    assert "(default: template)" in text and "assignment.toml), else 1200)" in text
    assert "(default: None)" not in text
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.startswith("python -m grader 0.")


def test_an_assignments_declared_limits_apply_unless_given():
    from grader import course
    from grader.limits import GiB, Limits

    declared = course.settings("a3_attention_bert")["limits"]
    got = course.limits_for("a3_attention_bert", Limits())
    assert got.run_budget == declared["run_budget"] != Limits().run_budget
    assert got.memory_bytes == int(declared["memory_gib"] * GiB)
    assert got.preload  # [boundary] preload, from the same file
    given = cli._limits(cli.parser().parse_args(["grade", "--budget", "42"]))
    assert given.explicit == {"run_budget"}
    assert course.limits_for("a3_attention_bert", given).run_budget == 42
    # a value the caller set (a kit test's short budget) is not replaced either
    assert course.limits_for("a3_attention_bert", Limits(run_budget=7.0)).run_budget == 7.0


PROGRESS_DEMO = """
from grader.commands import progress
from grader.controller import runner
with progress.tests("grading demo"):
    runner._notify("collected", 3)
    for nodeid in "abc":
        runner._notify("result", nodeid)
print("report")
"""


def _run_in_terminal(code: str) -> str:
    """Run ``code`` with a pseudo-terminal as its standard streams; what the terminal shows."""
    import os
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.execv(sys.executable, [sys.executable, "-c", code])
    shown = bytearray()
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.waitpid(pid, 0)
    return shown.decode(errors="replace")


def test_progress_shows_on_a_terminal_and_stays_out_of_logs():
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", _run_in_terminal(PROGRESS_DEMO))  # no colours
    assert "grading demo" in shown and "3/3 tests" in shown and "report" in shown
    piped = subprocess.run(
        [sys.executable, "-c", PROGRESS_DEMO],
        capture_output=True,
        text=True,
        cwd=KIT_ROOT,
        timeout=60,
    )
    assert piped.stdout == "report\n" and piped.stderr == ""  # a captured log stays plain


COMMANDS_ON_A_KIT = [
    ["grade"],
    ["grade", "-a", "a1_lm_basics"],
    ["templates"],
    ["validate"],
    ["autograder"],
    ["handout", "-a", "a1_lm_basics"],
    ["new", "a9_demo"],
]


@pytest.mark.parametrize("args", COMMANDS_ON_A_KIT, ids=" ".join)
def test_no_kit_is_a_usage_error_that_says_how_to_name_one(args, tmp_path):
    """An installed grader run where there is no kit (no --kit, no $COURSEKIT_KIT, a folder that
    is not one): exit status 2 and how to name a kit — never silence and 0, never a traceback."""
    done = _run(*args, cwd=tmp_path, COURSEKIT_KIT=str(tmp_path))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "no kit here" in done.stderr and "--kit DIR" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not list(tmp_path.iterdir())  # nothing written where there was no kit


@pytest.mark.parametrize(
    "args", [["autograder", "-a", "a1_lm_basics"], ["grade", "-a", "a1_lm_basics"]]
)
def test_missing_data_is_a_setup_problem_for_every_command(args, tmp_path):
    """Without the data sets (an empty data folder, downloads off): exit status 3, what is
    missing and the command that fixes it; nothing built or graded, no traceback."""
    out = ["--out", str(tmp_path / "out")] if args[0] == "autograder" else []
    done = _run(
        *args,
        *out,
        timeout=120,
        COURSEKIT_DATA_DIR=str(tmp_path / "data"),
        COURSEKIT_DATA_DOWNLOAD="0",
    )
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Setup problem" in done.stderr and "make data" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "out").exists()


def test_a_setup_problem_raised_inside_any_command_exits_3_without_a_traceback(monkeypatch, capsys):
    from grader.data import SetupProblem

    def lacks_a_model(args):
        raise SetupProblem("the pretrained model 'x' is not installed.", "`make setup`")

    monkeypatch.setattr(cli, "cmd_templates", lacks_a_model)
    assert cli.main(["templates"]) == cli.SETUP_PROBLEM
    err = capsys.readouterr().err
    assert "Setup problem" in err and "Fix: `make setup`" in err and "Traceback" not in err


def test_every_command_says_what_it_does_and_names_the_assignments():
    done = _run("autograder", "--help")
    text = " ".join(done.stdout.split())
    assert "build the Gradescope autograder zip" in text
    assert "one of: a1_lm_basics, a2_seq2seq, a3_attention_bert" in text
