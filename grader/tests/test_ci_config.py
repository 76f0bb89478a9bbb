"""The CI a course's fork runs: `.github/workflows/ci.yml` (GitHub Actions) and `.gitlab-ci.yml`.

The GitHub workflow passes zizmor, offline and pedantic (the workflow schema, actions pinned by
commit, permissions, credentials left on disk, template injection; `.github/zizmor.yml` turns one
rule off and says why); a copy broken one way fails it. Both files, read as YAML, install the
system Python the root-only tests use, run the README's commands in order — `make setup`,
`make data`, `.ci/run` — with pip's downloads and the data folder cached, then build the
Gradescope autograder zips and keep them as the run's artifact.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from grader.commands import package
from grader.course import KIT_ROOT
from grader.tests.conftest import SYSTEM_PYTHON

GITHUB = KIT_ROOT / ".github" / "workflows" / "ci.yml"
GITLAB = KIT_ROOT / ".gitlab-ci.yml"
ZIZMOR_CONFIG = KIT_ROOT / ".github" / "zizmor.yml"  # the one rule it turns off, and why
# What a run must do, in this order (README "Make targets"; .ci/run runs `make test`).
STEPS = ("make setup", "make data", "bash .ci/run", "-m grader autograder --out ")


def zizmor(workflow: Path) -> subprocess.CompletedProcess:
    here = Path(sys.executable).parent  # the venv's own, when pytest runs from .venv/bin
    exe = shutil.which("zizmor", path=str(here)) or shutil.which("zizmor")
    if exe is None:
        pytest.fail("zizmor is not installed: `make setup` installs it (pyproject.toml, extra dev)")
    return subprocess.run(
        [
            exe,
            "--offline",
            "--config",
            str(ZIZMOR_CONFIG),
            "--persona",
            "pedantic",
            "--strict-collection",
            "--format",
            "plain",
            str(workflow),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "RUST_BACKTRACE": "0"},
    )


def test_the_github_workflow_passes_zizmor():
    done = zizmor(GITHUB)
    assert done.returncode == 0, f"zizmor rejects {GITHUB.name}:\n{done.stdout}\n{done.stderr}"


CHECKOUT_PIN = r"actions/checkout@[0-9a-f]{40}"
BROKEN = {  # what the copy lacks: (pattern in the workflow, replacement)
    "a runner (runs-on)": (r"\n    runs-on: .*", ""),
    "a number of minutes (timeout-minutes)": (r"timeout-minutes: \d+", "timeout-minutes: ninety"),
    "a checkout pinned by commit": (CHECKOUT_PIN + ".*", "actions/checkout@v7"),
    "read-only permissions": (r"contents: read", "contents: write"),
    "the token kept off the disk": (r"\n +with:\n +persist-credentials: false", ""),
    "shell safe from a pull request's title": (
        r"run: bash \.ci/run",
        "run: echo ${{ github.event.pull_request.title }}",
    ),
}


@pytest.mark.parametrize("lacking", sorted(BROKEN))
def test_zizmor_rejects_a_workflow_broken_one_way(tmp_path, lacking):
    pattern, replacement = BROKEN[lacking]
    text = GITHUB.read_text()
    assert re.search(pattern, text), f"{GITHUB.name} no longer has {pattern!r}: update BROKEN"
    broken = tmp_path / "ci.yml"
    broken.write_text(re.sub(pattern, lambda _: replacement, text, count=1))
    done = zizmor(broken)
    assert done.returncode != 0, f"zizmor accepts a workflow without {lacking}:\n{done.stdout}"


@dataclass
class Run:
    """What one CI file does, in a shape both share."""

    commands: list[str]  # shell lines, in order
    env: dict[str, str]  # variables, the workspace prefix stripped
    cached: list[str]  # cached paths, relative to the workspace
    artifacts: list[str]  # uploaded globs, relative to the workspace
    python: str | None  # the first python3.N the job apt-get installs, e.g. "python3.11"


def _relative(value: str) -> str:
    return re.sub(r"^(\$\{\{ *github\.workspace *\}\}|\$CI_PROJECT_DIR)/", "", str(value))


def github_run(text: str) -> Run:
    data = yaml.safe_load(text)
    assert data.get("permissions") == {"contents": "read"}, "set `permissions: contents: read`"
    (job,) = data["jobs"].values()
    steps = job["steps"]
    uses = [s for s in steps if "uses" in s]
    commands = [s["run"].replace("\\\n", " ") for s in steps if "run" in s]
    return Run(
        commands=[line for c in commands for line in c.splitlines() if line],
        env={k: _relative(v) for k, v in job.get("env", {}).items()},
        cached=[s["with"]["path"] for s in uses if s["uses"].startswith("actions/cache@")],
        artifacts=[s["with"]["path"] for s in uses if "upload-artifact" in s["uses"]],
        python=_installed_python(commands),
    )


def _installed_python(commands: list[str]) -> str | None:
    installs = [c for c in commands if "apt-get install" in c]
    found = re.search(r"\bpython3\.\d+\b", " ".join(installs))
    return found.group(0) if found else None


def gitlab_run(text: str) -> Run:
    data = yaml.safe_load(text)
    jobs = [j for k, j in data.items() if isinstance(j, dict) and "script" in j]
    assert len(jobs) == 1, "one job: the zips are built from the tree that passed its tests"
    (job,) = jobs
    caches = job.get("cache", [])
    commands = [*job.get("before_script", []), *job["script"]]
    return Run(
        commands=commands,
        env={k: _relative(v) for k, v in data.get("variables", {}).items()},
        cached=[p for c in ([caches] if isinstance(caches, dict) else caches) for p in c["paths"]],
        artifacts=list(job.get("artifacts", {}).get("paths", [])),
        python=_installed_python(commands),
    )


def problems(run: Run, zip_name: str) -> list[str]:
    """What the run misses of the kit's CI, one line each (none when it does it all)."""
    found = []
    at = [next((i for i, c in enumerate(run.commands) if step in c), None) for step in STEPS]
    if None in at:
        found.append(f"never runs {STEPS[at.index(None)]!r}; runs {run.commands}")
    elif at != sorted(at):
        found.append(f"runs {STEPS} out of this order: {run.commands}")
    for variable in ("PIP_CACHE_DIR", "COURSEKIT_DATA_DIR"):
        if run.env.get(variable) not in run.cached:
            found.append(f"caches {run.cached}, not {variable} ({run.env.get(variable)})")
    build = next((c for c in run.commands if STEPS[-1] in c), "")
    out = build.split("--out ", 1)[-1].split()[0] if "--out " in build else None
    if not any(fnmatch.fnmatch(f"{out}/{zip_name}", glob) for glob in run.artifacts):
        found.append(f"uploads {run.artifacts}, not {out}/{zip_name} that `{build}` writes")
    kit = SpecifierSet(
        tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    if run.python is None or not kit.contains(run.python.removeprefix("python")):
        found.append(f"installs Python {run.python}; the kit requires {kit}")
    if run.python != SYSTEM_PYTHON.name:
        found.append(
            f"installs {run.python}, not {SYSTEM_PYTHON}: the tests that run student code as a "
            "user of its own (grader/tests/conftest.py SYSTEM_PYTHON) would skip"
        )
    return found


READERS = {GITHUB: github_run, GITLAB: gitlab_run}


@pytest.fixture(scope="module")
def zip_name(tmp_path_factory) -> str:
    """The name of an autograder zip as `python -m grader autograder` writes it."""
    return package.autograder("a1_lm_basics", tmp_path_factory.mktemp("zip")).name


@pytest.mark.parametrize("ci", list(READERS), ids=lambda p: p.name)
def test_ci_runs_the_readme_commands_with_caches_and_keeps_the_zips(ci, zip_name):
    assert problems(READERS[ci](ci.read_text()), zip_name) == []


BROKEN_RUNS = {  # what the copy lacks: (line of the file, its replacement)
    "the data sets' cache": ("coursekit-data]", "elsewhere]"),
    "the kit's tests": ("- bash .ci/run", "- make lint"),
    "the zips' artifact": ("out/autograder/autograder-*.zip", "out/*.whl"),
    "a supported Python": ("python3.11 python3.11-venv", "python3.10 python3.10-venv"),
}


@pytest.mark.parametrize("lacking", sorted(BROKEN_RUNS))
def test_a_gitlab_file_broken_one_way_is_named(lacking, zip_name):
    find, replace = BROKEN_RUNS[lacking]
    text = GITLAB.read_text()
    assert find in text, f"{GITLAB.name} no longer has {find!r}: update BROKEN_RUNS"
    assert problems(gitlab_run(text.replace(find, replace)), zip_name), (
        f"a file without {lacking} passes"
    )
