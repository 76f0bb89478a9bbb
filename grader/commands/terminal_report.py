"""A readable report of one grading run, for a terminal.

It reads top to bottom as a student works: the table of tests and the total; code that does not
load (each syntax error and each missing file once, whatever the number of tests it fails, shown
even with ``-q``); what differed in each test that ran and failed; one line per test whose
function is still the template's stub; and a closing summary — the score, the failed tests by
number and the first thing to fix — so the end of the report is what stays on the screen.
"""

from __future__ import annotations

from grader.controller.grading import Grade
from grader.records import CANNOT_RUN, FAILURE_KINDS, TestMeta, TestResult

NAME_WIDTH = 60


def handout_order(metas: list[TestMeta]) -> list[TestMeta]:
    """Tests by their handout number (1.2 before 1.10 before 2.1); unnumbered ones last."""

    def key(item: tuple[int, TestMeta]):
        i, m = item
        try:
            return (0, tuple(int(part) for part in (m.number or "").split(".")), i)
        except ValueError:
            return (1, (), i)

    return [m for _, m in sorted(enumerate(metas), key=key)]


def elide(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with a mark where it was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def numbers(metas: list[TestMeta], most: int = 12) -> str:
    """``1.1, 1.2, 4.3`` (the first ``most``, then how many more)."""
    shown = [m.number or m.name for m in metas[:most]]
    more = len(metas) - most
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _loading_problems(failed: list[tuple[TestMeta, TestResult]], where: str) -> list[str]:
    """What stops the code from loading (or the machine from grading), each once with the tests
    it fails: every missing file in one message, each syntax error once."""
    missing = [(m, r) for m, r in failed if r.kind == "missing"]
    lines = []
    if missing:
        files = list(dict.fromkeys(r.cause for _, r in missing if r.cause))
        lines.append(
            f"  ✗ {len(files)} file(s) of the assignment are missing from {where}: "
            f"{', '.join(files)}\n    (keep the template's file names and folders: each belongs "
            f"at {where}/<the path above>; fails {len(missing)} test(s): "
            f"{numbers([m for m, _ in missing])})"
        )
    by_cause: dict[tuple[str, str], list[TestMeta]] = {}
    for m, r in failed:
        if r.kind in ("syntax", "setup"):
            by_cause.setdefault((r.kind, r.cause or "(no message)"), []).append(m)
    for (kind, cause), metas in by_cause.items():
        fix = {
            "syntax": "Python cannot read the file: nothing in it runs",
            "setup": "not a mistake in your code: the grading machine lacks it",
        }[kind]
        lines.append(f"  ✗ {cause}\n    ({fix}; fails {len(metas)} test(s): {numbers(metas)})")
    return lines


def render(g: Grade, *, verbose_failures: bool = True, shown_as: str | None = None) -> str:
    """The report; ``shown_as`` names the graded tree as the student gave it (a file laid over
    the template is graded in a temporary folder)."""
    out = [f"Assignment {g.assignment} — graded: {shown_as or g.impl}", ""]
    metas = handout_order(g.metas)
    width = min(max((len(m.name) for m in metas), default=10), NAME_WIDTH)
    for m in metas:
        r = g.results[m.nodeid]
        mark = "✓" if r.status == "passed" else ("◐" if r.score > 0 else "✗")
        out.append(
            f"  {mark} {m.number or '':>6}  {elide(m.name, width):<{width}}  "
            f"{r.score:g} / {m.max_score:g}"
        )
    out.append("")
    out.append(
        f"Total: {g.score:g} / {g.max_score:g} points  ({len(metas)} tests, {g.seconds:.1f} s)"
    )
    failed = [(m, g.results[m.nodeid]) for m in metas if g.results[m.nodeid].status != "passed"]
    loading = _loading_problems(failed, str(shown_as or g.impl))
    if loading:
        out += ["", "Your code does not load (fix this first):", *loading]
    stubs = [(m, r) for m, r in failed if r.kind == "todo"]
    if verbose_failures:
        for m, r in failed:
            if r.kind in CANNOT_RUN or r.kind == "todo":
                continue
            out.append("")
            out.append(f"── {m.number or ''} {m.name}  ({r.score:g} / {m.max_score:g})")
            out.append(r.output.rstrip() or "(no message)")
        if stubs:
            out.append("")
            out.append(
                f"Not implemented yet ({len(stubs)} tests; each stub raises NotImplementedError "
                "until you fill in its TODO):"
            )
            out += [f"  {m.number or '':>6}  {r.cause or m.name}" for m, r in stubs]
    out += ["", _summary(g, metas, failed)]
    return "\n".join(out)


def _summary(g: Grade, metas: list[TestMeta], failed: list[tuple[TestMeta, TestResult]]) -> str:
    head = f"Summary: {g.score:g} / {g.max_score:g} points."
    if not failed:
        return f"{head} Every test passed."
    head += f" Failed {len(failed)} of {len(metas)} tests: {numbers([m for m, _ in failed])}."
    rank = {kind: i for i, kind in enumerate(FAILURE_KINDS)}  # the order to see to them
    m, r = min(failed, key=lambda mr: rank.get(mr[1].kind, rank["failed"]))
    what = r.cause or next((line for line in r.output.splitlines() if line.strip()), "")
    if r.kind == "missing":
        what = f"{what} is missing (and every file listed under 'Your code does not load')"
    return f"{head}\nFirst to fix: {m.number or ''} {m.name} — {elide(what.strip(), 160)}"
