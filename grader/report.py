"""A readable report of one grading run, for a terminal."""

from __future__ import annotations

from grader.assignments import Grade


def render(g: Grade, *, verbose_failures: bool = True) -> str:
    out = [f"Assignment {g.assignment} — graded: {g.impl}", ""]
    width = max((len(m.name) for m in g.metas), default=10)
    width = min(width, 60)
    for m in g.metas:
        r = g.results[m.nodeid]
        mark = "✓" if r.status == "passed" else ("◐" if r.score > 0 else "✗")
        out.append(
            f"  {mark} {m.number or '':>6}  {m.name[:width]:<{width}}  {r.score:g} / {m.max_score:g}"
        )
    out.append("")
    out.append(
        f"Total: {g.score:g} / {g.max_score:g} points  ({len(g.metas)} tests, {g.seconds:.1f} s)"
    )
    if verbose_failures:
        for m in g.metas:
            r = g.results[m.nodeid]
            if r.status != "passed":
                out.append("")
                out.append(f"── {m.number or ''} {m.name}  ({r.score:g} / {m.max_score:g})")
                out.append(r.output.rstrip() or "(no message)")
    return "\n".join(out)
