"""``make mutation A=<a>``: a mutation score of one assignment's graded suite, with mutmut.

mutmut (the ``mutation`` extra of pyproject.toml) changes ``reference/<a>/*.py`` one small edit
at a time (an operator, a constant, an argument dropped...) and runs the graded tests against
each mutant; a mutant that no test fails "survived", and is either equivalent (no behaviour
changed) or a gap in the tests. The hand-written catalogue (``tests/<a>/mutants.toml``,
``grader mutants``) checks realistic student bugs and their hints; this counts the rest.

The run works on a staged copy under ``out/mutation/work/<a>/`` (reference/ and tests/ are only
read): the assignment package at the top level, where mutmut expects sources, so that the
tests' ``deliverable("<a>.X")`` imports mutmut's copy (a plain pytest run imports deliverables
into the test process, from the first ``<a>`` package on sys.path). mutmut records which tests
call each function and runs only those for a mutant of that function. Deterministic: the
``grading`` Hypothesis profile (derandomized), one thread, one mutant at a time; a mutant times
out after 10 x its tests' clean duration + 20 s (and pytest-timeout's 60 s per test).

    python bench/mutation.py a1_lm_basics [--skip-slow]

Writes ``out/mutation/<a>.md``: killed / survived / timeout / total and every survivor (file,
line, the change); and ``out/mutation/<a>.survivors.json``, the survivors as data
(``bench/equivalence.py`` probes them).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage(assignment: str, work: Path, skip_slow: bool) -> None:
    """The assignment package and its tests side by side, with the kit's pytest settings."""
    if work.exists():
        shutil.rmtree(work)
    (work / "tests").mkdir(parents=True)
    shutil.copytree(ROOT / "reference" / assignment, work / assignment)
    shutil.copytree(ROOT / "tests" / assignment, work / "tests" / assignment)
    from grader.commands.package import SHARED_TEST_FILES  # tests/ files the suites import

    for name in SHARED_TEST_FILES:
        shutil.copy2(ROOT / "tests" / name, work / "tests" / name)
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    ini = {**ini, "grader_impl": ".", "testpaths": ["tests"]}
    cli = ["-m", "not slow"] if skip_slow else []
    # Tests that read the graded tree itself are left out: the static audit would read mutmut's
    # trampolines (the dynamic access it refuses), and the artifact checks read files mutmut
    # never changes. They grade what is on disk, not the behaviour of the mutated functions.
    for path in sorted((ROOT / "tests" / assignment).glob("test_*.py")):
        for name in re.findall(r"^def (test_\w+)\([^)]*graded_tree", path.read_text(), re.M):
            cli += ["--deselect", f"tests/{assignment}/{path.name}::{name}"]
    lines = ["[tool.pytest.ini_options]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in ini.items()]
    lines += [
        "",
        "[tool.mutmut]",
        f'source_paths = ["{assignment}"]',
        f'pytest_add_cli_args_test_selection = ["tests/{assignment}"]',
        f"pytest_add_cli_args = {json.dumps(cli)}",
        "timeout_multiplier = 10.0",
        "timeout_constant = 20.0",
        "use_git_change_detection = false",
    ]
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n")


def line_of(source: Path, function: str, cls: str | None, removed: str) -> int:
    """The line of ``source`` (1-based) inside ``[cls.]function`` that reads ``removed`` (mutmut
    shows a method dedented, so lines are compared without their indentation)."""
    tree = ast.parse(source.read_text())
    body = tree.body
    if cls:
        body = next(n.body for n in body if isinstance(n, ast.ClassDef) and n.name == cls)
    node = next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == function)
    lines = source.read_text().splitlines()
    for number in range(node.lineno, node.end_lineno + 1):
        if lines[number - 1].strip() == removed.strip():
            return number
    return node.lineno


def solution_lines(source: Path) -> set[int]:
    """Lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``: what students write."""
    inside, lines = False, set()
    for number, text in enumerate(source.read_text().splitlines(), 1):
        inside = (inside or "# BEGIN SOLUTION" in text) and "# END SOLUTION" not in text
        if inside:
            lines.add(number)
    return lines


def report(assignment: str, work: Path, seconds: float, log: Path) -> tuple[str, list[dict]]:
    """The summary and the survivors (as text, and as data), read from mutmut's results in
    ``work/mutants``."""
    os.chdir(work)
    sys.path.insert(0, str(work / "mutants"))
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    counts: dict[str, int] = {}
    survivors = []
    for path in sorted(Path(assignment).glob("*.py")):
        data = SourceFileMutationData(path=path)
        data.load()
        for key, code in data.exit_code_by_key.items():
            status = status_by_exit_code[code]
            counts[status] = counts.get(status, 0) + 1
            if status in ("killed", "timeout"):
                continue
            diff = get_diff_for_mutant(key, path=path).splitlines()[3:]  # skip ---/+++/@@
            removed = [d[1:].strip() for d in diff if d.startswith("-")]
            added = [d[1:].strip() for d in diff if d.startswith("+")]
            function, cls = orig_function_and_class_names_from_key(key)
            line = line_of(path, function, cls, removed[0] if removed else "")
            survivors.append(
                {
                    "file": path.name,
                    "line": line,
                    "key": key,
                    "status": status,
                    "given": line not in solution_lines(path),
                    "removed": removed,
                    "added": added,
                }
            )
    total = sum(counts.values())
    killed = counts.get("killed", 0)
    out = [
        f"# Mutation score: {assignment}",
        "",
        f"mutmut over reference/{assignment}/*.py, tests/{assignment} (grading profile, one "
        f"thread), {seconds / 60:.1f} min. Log: {log.relative_to(ROOT)}.",
        "",
        "| killed | survived | timeout | other | total | score |",
        "|---|---|---|---|---|---|",
        f"| {killed} | {counts.get('survived', 0)} | {counts.get('timeout', 0)} | "
        f"{total - killed - counts.get('survived', 0) - counts.get('timeout', 0)} | {total} | "
        f"{(killed + counts.get('timeout', 0)) / max(total, 1):.1%} |",
        "",
        f"Statuses: {json.dumps(counts)}",
        "",
        "## Survivors (and any mutant no test ran)",
        "",
        "'given code': outside the BEGIN/END SOLUTION regions, i.e. handed to students as is.",
        "",
    ]
    for v in survivors:
        status = v["status"] + (", given code" if v["given"] else "")
        out += [f"- reference/{assignment}/{v['file']}:{v['line']} `{v['key']}` ({status})"]
        out += [
            f"  - `{' / '.join(v['removed'])}`",
            f"  + `{' / '.join(v['added']) or '(deleted)'}`",
        ]
    return "\n".join(out) + "\n", survivors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment", help="e.g. a1_lm_basics")
    parser.add_argument("--skip-slow", action="store_true", help="leave out @slow tests")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from the last run's results"
    )
    args = parser.parse_args()
    if not (ROOT / "reference" / args.assignment).is_dir():
        parser.error(f"no reference/{args.assignment}")
    out = ROOT / "out" / "mutation"
    work = out / "work" / args.assignment
    log = out / f"{args.assignment}.log"
    if args.report_only:
        return write_report(args.assignment, work, log)
    stage(args.assignment, work, args.skip_slow)
    env = {**os.environ, "HYPOTHESIS_PROFILE": "grading", "OMP_NUM_THREADS": "1"}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["MKL_NUM_THREADS"] = "1"
    mutmut = Path(sys.executable).with_name("mutmut")
    start = time.monotonic()
    with log.open("w") as sink:
        run = subprocess.run(
            [str(mutmut), "run", "--max-children", "1"], cwd=work, env=env, stdout=sink, stderr=sink
        )
    (work / "seconds.txt").write_text(f"{time.monotonic() - start:.1f}\n")
    if run.returncode != 0:
        print(f"mutmut failed (exit {run.returncode}); see {log}", file=sys.stderr)
        return run.returncode
    return write_report(args.assignment, work, log)


def write_report(assignment: str, work: Path, log: Path) -> int:
    seconds = float((work / "seconds.txt").read_text())
    text, survivors = report(assignment, work, seconds, log)
    (ROOT / "out" / "mutation" / f"{assignment}.md").write_text(text)
    # The same survivors as data, for bench/equivalence.py (which probes them).
    (ROOT / "out" / "mutation" / f"{assignment}.survivors.json").write_text(
        json.dumps(survivors, indent=1, ensure_ascii=False)
    )
    print(text.split("## Survivors")[0].rstrip())
    print(f"survivors: out/mutation/{assignment}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
