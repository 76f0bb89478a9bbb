"""A readable report of one grading run, for a terminal."""

from __future__ import annotations

from grader.controller.grading import Grade
from grader.records import TestMeta

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
            f"  {mark} {m.number or '':>6}  {elide(m.name, width):<{width}}  {r.score:g} / {m.max_score:g}"
        )
    out.append("")
    out.append(
        f"Total: {g.score:g} / {g.max_score:g} points  ({len(metas)} tests, {g.seconds:.1f} s)"
    )
    if verbose_failures:
        for m in metas:
            r = g.results[m.nodeid]
            if r.status != "passed":
                out.append("")
                out.append(f"── {m.number or ''} {m.name}  ({r.score:g} / {m.max_score:g})")
                out.append(r.output.rstrip() or "(no message)")
    return "\n".join(out)
