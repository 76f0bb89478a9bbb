"""``python -m grader`` — grade, templates, validate, mutants."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Exit status 3: the machine is not ready to grade (data, a model). grader.data is stdlib alone.
from grader.data import SETUP_PROBLEM

# Nothing else of the kit is imported here: `--kit` must be read before anything asks where the kit
# is (grader.course.KIT_ROOT), and `--help` answers at once.


# The commands import what they use when they run: `--help` and a bad argument answer at once
# (the grading modules pull in jsonschema, pytest and, for some, torch).
def _no_kit() -> str | None:
    """Why there is no kit to work on here (None: there is one)."""
    from grader import course

    root = course.kit_root()
    if (root / "tests").is_dir() and (root / "pyproject.toml").is_file():
        return None
    return (
        f"no kit here: {root} has no tests/ and pyproject.toml. Run from the kit's folder, or "
        f"name it: python -m grader --kit DIR <command> (or set {course.KIT_ENV})."
    )


def _assignment(value: str) -> str:
    from grader import course

    if problem := _no_kit():
        raise argparse.ArgumentTypeError(problem)
    known = course.names()
    if value not in known:
        raise argparse.ArgumentTypeError(
            f"unknown assignment {value!r}; known: {', '.join(known) or 'none'}"
        )
    return value


def _impl(value: str) -> str:
    """``reference``, ``template`` (or ``student_template``, as coursekit spells it), or an
    existing file or folder."""
    from grader.course import tree_name

    if tree_name(value):
        return tree_name(value)
    if not Path(value).exists():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not 'reference' or 'template', and no file or folder of that name exists"
        )
    return value


def _existing(kind: str):
    def check(value: str) -> str:
        path = Path(value)
        ok = path.is_dir() if kind == "folder" else path.exists()
        if not ok:
            raise argparse.ArgumentTypeError(f"no {kind} {value!r}")
        return value

    return check


def _positive(kind: type):
    def check(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not number > 0:
            raise argparse.ArgumentTypeError(f"{value!r} must be above 0")
        return number

    return check


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it has none (None, or off for a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nlp-course-kit")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _limits(args: argparse.Namespace):
    """The limits given on the command line; the assignment's declared ones fill in the rest
    (``grader.course.limits_for``)."""
    from grader.limits import GiB, Limits

    given = {
        "run_budget": args.budget,
        "test_timeout": args.test_timeout,
        "threads": args.threads,
        "memory_bytes": None if args.memory_gib is None else int(args.memory_gib * GiB),
    }
    given = {k: v for k, v in given.items() if v is not None}
    return Limits(**given, explicit=frozenset(given))


def _add_limits(p: argparse.ArgumentParser) -> None:
    from grader.limits import GiB, Limits

    d = Limits()
    declared = "default: the assignment's (tests/<a>/assignment.toml), else"
    p.add_argument(
        "--budget",
        type=_positive(float),
        help=f"whole-run time budget, s ({declared} {d.run_budget:g})",
    )
    p.add_argument(
        "--memory-gib",
        type=_positive(float),
        help=f"address-space limit per test process, GiB ({declared} {d.memory_bytes / GiB:g})",
    )
    p.add_argument(
        "--test-timeout",
        type=_positive(float),
        help=f"per-test time limit, s ({declared} each test's own, else "
        f"{d.default_test_timeout:g})",
    )
    p.add_argument(
        "--threads",
        type=_positive(int),
        help=f"compute threads per test process ({declared} {d.threads})",
    )


def _data_ready(names: list[str]) -> bool:
    """Fetch (where it can) and check the data the assignments' graded tests read, here in the
    grader's own process; say what is missing and the command that fixes it."""
    from grader import course
    from grader.data import ENV, FIX, course_module, data_dir

    needs = [course.data_needs(n) for n in names]
    needed = [f for need in needs for f in (*need.public, *need.heldout)]
    problems = course_module("data").ensure(list(dict.fromkeys(needed))) if needed else []
    if problems:
        print(
            f"Setup problem (not a mistake in any submission): {len(problems)} data file(s) "
            f"the graded tests read are not in {data_dir()}:",
            *(f"  {p}" for p in problems),
            f"Fix: `{FIX}` (online), or set {ENV} to a folder that holds the data sets. "
            "Nothing was graded.",
            sep="\n",
            file=sys.stderr,
        )
    models = list(dict.fromkeys(m for need in needs for m in need.models))
    if models:
        if missing := course_module("models").missing_models(models):
            print(
                "Setup problem (not a mistake in any submission): a pretrained model the graded "
                "tests load is missing:",
                *(f"  {p}" for p in missing),
                "Nothing was graded.",
                sep="\n",
                file=sys.stderr,
            )
            problems += missing
    return not problems


def _assignments(arg: str | None) -> list[str]:
    from grader import course

    return [arg] if arg else course.names()


def _graded(args: argparse.Namespace, name: str, stack: contextlib.ExitStack):
    """(the grading, results.json, the staff flags) of ``--impl`` for assignment ``name``. A
    submitted file (zip, notebook, module) takes run_autograder's path, ``pipeline.grade_upload``:
    laid over the template, audited, graded, results built — the score and flags Gradescope
    gives the same upload. A folder is graded as it is (a tree: reference, template, a
    student's checkout), through the same audit and results."""
    from grader import course
    from grader.commands import progress
    from grader.controller import pipeline

    impl = course.resolve_impl(args.impl, name)
    limits, hidden = _limits(args), args.hidden
    if impl.is_file():
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grade-")))
        (tmp / "submission").mkdir()
        shutil.copy(impl, tmp / "submission" / impl.name)
    with progress.tests(f"grading {name}"):
        if not impl.is_file():
            return pipeline.grade_tree(name, impl, limits=limits, hidden=hidden)
        outcome = pipeline.grade_upload(
            name, tmp / "submission", tmp / "work", user=None, limits=limits, hidden=hidden
        )
    print(outcome.placed.report(), end="\n\n")
    return outcome


def cmd_grade(args: argparse.Namespace) -> int:
    from grader.commands import terminal_report
    from grader.controller import results_json

    if not _data_ready(_assignments(args.assignment)):
        return SETUP_PROBLEM
    for name in _assignments(args.assignment):
        with contextlib.ExitStack() as stack:
            outcome = _graded(args, name, stack)
            g, data = outcome.grade, outcome.data
            if args.results:
                path = Path(args.results)
                if len(_assignments(args.assignment)) > 1:
                    path = path.with_name(f"{path.stem}.{name}{path.suffix}")
                results_json.write(path, data)
            else:
                results_json.validate(data)
            if args.json:
                print(json.dumps(data, indent=2))
            else:
                shown = args.impl if Path(args.impl).is_file() else None
                print(terminal_report.render(g, verbose_failures=not args.quiet, shown_as=shown))
                for f in outcome.flags:  # what course staff see on Gradescope
                    print(f"Flagged for course staff: {f.file}:{f.line}: {f.why}")
                print()
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    from grader.commands import templates

    done = templates.sync(check=args.check, force=args.force)
    if args.check:
        if done.problems:
            print(
                "student_template/ differs from what reference/ generates:",
                *done.problems,
                sep="\n",
            )
            print("\nRun `python -m grader templates` (never edit student_template/ by hand).")
            return 1
        print("student_template/ is up to date with reference/.")
        return 0
    if done.kept:
        print(
            "Kept as they are (changed since they were generated — a student's work?); their "
            "new stubs were not written:",
            *(f"  student_template/{k}" for k in done.kept),
            "Move them away, or run `python -m grader templates --force` to overwrite them.",
            sep="\n",
        )
        return 1
    print(
        "regenerated student_template/" if done.problems else "student_template/ already up to date"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from grader.commands import progress, selfcheck

    if not _data_ready(_assignments(args.assignment)):
        return SETUP_PROBLEM
    ok = True
    for name in _assignments(args.assignment):
        with progress.tests(f"validate {name} (reference, then template)"):
            verdict = selfcheck.validate(name, _limits(args))
        print(f"== validate {name}: {'ok' if verdict.ok else 'FAILED'}", *verdict.lines, sep="\n")
        ok &= verdict.ok
    return 0 if ok else 1


def cmd_mutants(args: argparse.Namespace) -> int:
    from grader.commands import selfcheck

    if not _data_ready(_assignments(args.assignment)):
        return SETUP_PROBLEM
    ok = True
    for name in _assignments(args.assignment):
        verdict, _ = selfcheck.mutants(name, jobs=args.jobs, limits=_limits(args), exact=args.exact)
        print(
            f"== mutants {name}: {'all caught' if verdict.ok else 'FAILED'}",
            *verdict.lines,
            sep="\n",
        )
        ok &= verdict.ok
    return 0 if ok else 1


def cmd_autograder(args: argparse.Namespace) -> int:
    from grader.commands import package

    if not _data_ready(_assignments(args.assignment)):  # the zip carries the data the tests read
        return SETUP_PROBLEM
    for name in _assignments(args.assignment):
        print(f"wrote {package.autograder(name, Path(args.out))}")
    return 0


def cmd_handout(args: argparse.Namespace) -> int:
    from grader.commands import package

    for name in _assignments(args.assignment):
        print(f"wrote {package.handout(name, Path(args.out))}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from grader.commands import batch

    name = args.assignment
    if not _data_ready([name]):
        return SETUP_PROBLEM
    out = Path(args.out)
    files = set(args.files.split(",")) if args.files else None
    batch.hide_command_line()  # it names the submissions folder: no student's process reads it
    if shown := batch.exposed(name, Path(args.submissions)):
        print(
            "Warning: every user of this machine can read",
            *(f"  {p}" for p in shown),
            "so a submission graded here could read them too. Make them private (chmod -R "
            "o-rwx PATH), or grade on Gradescope (its zip carries no reference; held-out files "
            "are root's alone there).",
            sep="\n",
            file=sys.stderr,
        )
    graded = batch.grade_all(
        Path(args.submissions),
        name,
        out,
        jobs=args.jobs,
        limits=_limits(args),
        files=files,
        lane_user=args.users,
    )
    print((out / "summary.txt").read_text().strip())
    print(f"gradebook: {out / 'gradebook.csv'}; per-test statistics: {out / 'tests.csv'}")
    return 0 if graded else 1


def cmd_gradescope(args: argparse.Namespace) -> int:
    from grader.commands import autograder

    name = args.assignment
    data = autograder.run(name, Path(args.root), args.user or None, _limits(args))
    print(data.get("output", ""))
    return 0  # the run succeeded if results.json was written, whatever the score


def cmd_new(args: argparse.Namespace) -> int:
    from grader import course
    from grader.commands import progress, scaffold, selfcheck, templates

    try:
        written = scaffold.create(args.name)
    except scaffold.ScaffoldError as exc:
        print(f"python -m grader new: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(course.KIT_ROOT)}")
    templates.sync(check=False)
    print(f"generated student_template/{args.name}/ from reference/{args.name}/")
    if args.no_validate:
        return 0
    with progress.tests(f"validate {args.name} (reference, then template)"):
        verdict = selfcheck.validate(args.name)
    print(f"== validate {args.name}: {'ok' if verdict.ok else 'FAILED'}", *verdict.lines, sep="\n")
    print(
        '\nNext (README.md, "Adding an assignment"): write the handout\'s deliverables in '
        f"reference/{args.name}/ between solution marks, their graded tests in tests/{args.name}/, "
        f"realistic mistakes in tests/{args.name}/mutants.toml; then `python -m grader templates`, "
        f"`python -m grader validate -a {args.name}` and `python -m grader mutants -a {args.name}`."
    )
    return 0 if verdict.ok else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    top.add_argument(
        "--kit",
        type=_kit,
        metavar="DIR",
        help="the kit folder (tests/, reference/, student_template/); default: "
        "$COURSEKIT_KIT, else the checkout the package runs from",
    )
    sub = top.add_subparsers(dest="command", required=True)
    from grader import course

    known = "none (no kit here)" if _no_kit() else ", ".join(course.names()) or "none yet"

    def add_assignment(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--assignment",
            "-a",
            type=_assignment,
            help=f"assignment package, one of: {known} (default: all)",
        )

    # Every option's default shows in its help; a bad value stops with a message and status 2.
    fmt = {"formatter_class": _Help}

    p = sub.add_parser(
        "grade", **fmt, help="grade one implementation tree; write Gradescope results.json"
    )
    add_assignment(p)
    p.add_argument(
        "--impl",
        default="template",
        type=_impl,
        help="reference, template (also spelt student_template), or a path to a "
        "folder, zip, notebook or module",
    )
    p.add_argument("--results", help="write Gradescope results.json here")
    p.add_argument("--hidden", action="store_true", help="also run tests not visible to students")
    p.add_argument("--json", action="store_true", help="print results.json instead of the report")
    p.add_argument("--quiet", "-q", action="store_true", help="no failure details")
    _add_limits(p)
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("templates", **fmt, help="generate student_template/ from reference/")
    p.add_argument("--check", action="store_true", help="fail if the committed templates are stale")
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite files changed since they were generated (a student's work)",
    )
    p.set_defaults(func=cmd_templates)

    for name, func, text in (
        ("validate", cmd_validate, "reference scores full marks, template scores zero"),
        ("mutants", cmd_mutants, "every catalogued student bug loses points"),
    ):
        p = sub.add_parser(name, **fmt, help=text)
        add_assignment(p)
        if name == "mutants":
            p.add_argument(
                "--jobs", "-j", type=_positive(int), default=2, help="mutants graded at once"
            )
            p.add_argument(
                "--exact",
                action="store_true",
                help="grade each mutant on every test of the files it targets (not only the "
                "tests its entry names and one guard per file): its 'breaks' must be complete",
            )
        _add_limits(p)
        p.set_defaults(func=func)
    p = sub.add_parser(
        "new",
        **fmt,
        help="scaffold a new assignment that validates at once (reference, tests, "
        "settings, an empty mistake catalogue)",
    )
    p.add_argument("name", help="the assignment's package name, e.g. a4_transformers")
    p.add_argument("--no-validate", action="store_true", help="write the files only")
    p.set_defaults(func=cmd_new)

    for name, func, text in (
        ("autograder", cmd_autograder, "build the Gradescope autograder zip"),
        ("handout", cmd_handout, "build what students download (public tests only)"),
    ):
        p = sub.add_parser(name, **fmt, help=text)
        add_assignment(p)
        p.add_argument("--out", default="out", help="output folder")
        p.set_defaults(func=func)

    p = sub.add_parser(
        "batch", **fmt, help="regrade a folder of submissions or a Gradescope export"
    )
    p.add_argument(
        "submissions",
        type=_existing("file or folder"),
        help="folder of submissions, or a Gradescope export zip",
    )
    p.add_argument("--assignment", "-a", required=True, type=_assignment)
    p.add_argument(
        "--jobs", "-j", type=_positive(int), default=2, help="submissions graded at once"
    )
    p.add_argument("--out", default="out/batch", help="where the gradebook goes")
    p.add_argument(
        "--files", default=None, help="only these test files, comma-separated (test_x.py,...)"
    )
    p.add_argument(
        "--users",
        default="coursekit-lane",
        metavar="POOL",
        help="as root, each lane runs student code as a user of this pool it owns for "
        "the batch (POOL, POOL-2, ...; created when missing)",
    )
    _add_limits(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser(
        "gradescope", **fmt, help="run_autograder's work: overlay, grade, results.json"
    )
    p.add_argument("--assignment", "-a", required=True, type=_assignment)
    p.add_argument(
        "--root", default="/autograder", type=_existing("folder"), help="Gradescope's folder"
    )
    p.add_argument(
        "--user", default="student", help="unprivileged user for student code ('' = none)"
    )
    _add_limits(p)
    p.set_defaults(func=cmd_gradescope)
    for action in sub._choices_actions:  # each command's --help opens with what it does
        sub.choices[action.dest].description = action.help
    return top


def _kit(value: str) -> str:
    path = Path(value).expanduser()
    if not (path / "tests").is_dir() or not (path / "pyproject.toml").is_file():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a kit folder (one with tests/, reference/ or student_template/, "
            "and pyproject.toml)"
        )
    return str(path.resolve())


def _stoppable(args: argparse.Namespace) -> int:
    """Run a grading command that Ctrl-C (SIGINT) or SIGTERM stops at once: every process it
    started is killed (``grader.controller.runner.stopped_by``), one line says so, no traceback,
    and the status is 128 + the signal's number (130 for Ctrl-C)."""
    import signal

    from grader.controller.runner import stopped_by

    with stopped_by() as caught:
        try:
            return args.func(args)
        except KeyboardInterrupt:
            pass
    signum = caught.signum or signal.SIGINT
    what = "Interrupted" if signum == signal.SIGINT else f"Stopped by {signal.Signals(signum).name}"
    print(
        f"{what}: grading stopped and every process it started was killed; what it was "
        "grading was not scored.",
        file=sys.stderr,
    )
    return 128 + signum


# The commands that grade (``new`` validates what it wrote): run out of student code's reach, and
# stopped whole by Ctrl-C.
GRADING_COMMANDS = ("grade", "validate", "mutants", "batch", "gradescope", "new")


def main(argv: list[str] | None = None) -> int:
    # --kit first, before anything asks where the kit is (an installed package has no checkout).
    early = argparse.ArgumentParser(prog="python -m grader", add_help=False)
    early.add_argument("--kit", type=_kit)
    known, _ = early.parse_known_args(argv)
    if known.kit:
        from grader.course import KIT_ENV

        os.environ[KIT_ENV] = known.kit  # the grading children inherit it
    args = parser().parse_args(argv)
    if problem := _no_kit():
        print(f"python -m grader {args.command}: {problem}", file=sys.stderr)
        return 2
    grades = args.command in GRADING_COMMANDS
    if grades:
        from grader.sandbox import not_dumpable

        not_dumpable()  # the parent writes results.json: out of reach of student code
    from grader.data import SetupProblem

    try:
        return _stoppable(args) if grades else args.func(args)
    except SetupProblem as exc:  # data or a model the machine lacks: never a traceback
        print(f"{exc}\nNothing was done.", file=sys.stderr)
        return SETUP_PROBLEM


if __name__ == "__main__":
    sys.exit(main())
