"""The kit's self-checks on an assignment: ``validate`` (reference full, template zero) and
``mutants`` (each realistic wrong answer loses the points its catalogue entry says)."""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from grader import course
from grader.commands import progress
from grader.controller import grading, mutant_hints, zygote
from grader.controller.runner import Manifest, collect
from grader.limits import Limits


@dataclass
class Verdict:
    ok: bool
    lines: list[str]


def validate(
    assignment: str, limits: Limits = Limits(), manifest: Manifest | None = None
) -> Verdict:
    """The reference scores the maximum; the template scores 0, every test on NotImplementedError
    (a trusted check, which runs no student code, on a clear message about what is missing)."""
    with zygote.forking():  # two gradings: the second starts warm
        return _validate(assignment, limits, manifest)


def _validate(assignment: str, limits: Limits, manifest: Manifest | None) -> Verdict:
    manifest = manifest or collect(course.test_paths(assignment), limits)
    lines, ok = [], True
    ref = grading.grade(assignment, course.REFERENCE, hidden=True, limits=limits, manifest=manifest)
    lines.append(f"reference: {ref.score:g} / {ref.max_score:g} in {ref.seconds:.1f} s")
    for m in ref.metas:
        if ref.results[m.nodeid].status != "passed":
            ok = False
            lines.append(f"  FAILS on the reference: {m.nodeid}\n{ref.results[m.nodeid].output}")
    tpl = grading.grade(assignment, course.TEMPLATE, hidden=True, limits=limits, manifest=manifest)
    lines.append(f"template:  {tpl.score:g} / {tpl.max_score:g} in {tpl.seconds:.1f} s")
    for m in tpl.metas:
        res = tpl.results[m.nodeid]
        if res.score != 0 or res.status != "failed":
            ok = False
            lines.append(f"  PASSES on the template: {m.nodeid}")
        elif m.trusted:  # runs no student code: it fails on what the template lacks (a file)
            if not res.output.strip() or "Error during" in res.output:
                ok = False
                lines.append(f"  trusted check fails without a clear message: {m.nodeid}")
        elif "NotImplementedError" not in res.output:
            ok = False
            lines.append(
                f"  fails on the template without NotImplementedError: {m.nodeid}\n{res.output}"
            )
    if not ref.metas:
        ok = False
        lines.append("  no graded tests found")
    return Verdict(ok, lines)


@dataclass
class MutantOutcome:
    mutant: mutant_hints.Mutant
    lost: float  # points lost against the reference's full marks, over the tests it targets
    of: float
    broken: set[str]  # test keys that lost points
    error: str = ""
    surprise: str = ""  # why the first test it was not expected to break lost points

    @property
    def caught(self) -> bool:
        return not self.error and set(self.mutant.breaks) <= self.broken and self.lost > 0

    @property
    def exact(self) -> bool:
        return self.broken == set(self.mutant.breaks)


def apply(mutant: mutant_hints.Mutant, package: Path) -> None:
    target = package / mutant.file
    source = target.read_text()
    count = source.count(mutant.find)
    if count != 1:
        raise ValueError(
            f"mutant {mutant.id}: 'find' occurs {count} times in {mutant.file} (want 1)"
        )
    target.write_text(source.replace(mutant.find, mutant.replace))


def graded_for(mutant: mutant_hints.Mutant, manifest: Manifest, exact: bool = False) -> Manifest:
    """The tests a mutant is graded on: the tests its entry names, plus a *guard* — in each file
    it targets, the first test it does not name (never a slow one), which must keep full marks:
    a mutant that breaks its whole module (an import error, a name gone) is caught by accident
    there, not by the tests its entry claims. ``exact``: every test of the files it targets
    (slow ones only when named), so the catalogue's ``breaks`` must be the whole truth."""
    named = set(mutant.breaks)
    files = {b.split("::")[0] for b in named}
    in_files = [
        m for m in manifest.tests if mutant_hints.test_key(m.nodeid).split("::")[0] in files
    ]
    if exact:
        chosen = [m for m in in_files if not m.slow or mutant_hints.test_key(m.nodeid) in named]
    else:
        guards = {}
        for m in in_files:
            key = mutant_hints.test_key(m.nodeid)
            if key not in named and not m.slow:
                guards.setdefault(key.split("::")[0], key)
        chosen = [
            m for m in in_files if mutant_hints.test_key(m.nodeid) in named | set(guards.values())
        ]
    return Manifest(chosen, manifest.errors)


def _run_mutant(
    assignment: str,
    mutant: mutant_hints.Mutant,
    manifest: Manifest,
    limits: Limits,
    exact: bool = False,
) -> MutantOutcome:
    manifest = graded_for(mutant, manifest, exact)
    files = {b.split("::")[0] for b in mutant.breaks}  # the child collects only these
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as tmp:
        package = Path(tmp, assignment)
        shutil.copytree(
            course.REFERENCE / assignment,
            package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        try:
            apply(mutant, package)
        except ValueError as exc:
            return MutantOutcome(mutant, 0.0, 0.0, set(), str(exc))
        g = grading.grade(
            assignment, Path(tmp), hidden=True, limits=limits, manifest=manifest, files=files
        )
    lost_by: dict[str, float] = defaultdict(float)
    for m in g.metas:
        lost_by[mutant_hints.test_key(m.nodeid)] += m.max_score - g.results[m.nodeid].score
    broken = {k for k, v in lost_by.items() if v > 0}
    surprise = ""
    for m in g.metas:  # a catalogue error or a harness problem (a timeout on a loaded machine)
        if mutant_hints.test_key(m.nodeid) in broken - set(mutant.breaks):
            lines = [x for x in g.results[m.nodeid].output.splitlines() if x.strip()]
            surprise = f"{mutant_hints.test_key(m.nodeid)}: {' | '.join(lines[:3])[:300]}"
            break
    return MutantOutcome(mutant, g.max_score - g.score, g.max_score, broken, surprise=surprise)


def mutants(
    assignment: str, jobs: int = 2, limits: Limits = Limits(), exact: bool = False
) -> tuple[Verdict, list[MutantOutcome]]:
    """Grade every catalogued mutant on its named tests and their guards (see
    :func:`graded_for`); ``exact``: on every test of the files it targets."""
    catalogue = mutant_hints.load(assignment)
    manifest = collect(course.test_paths(assignment), limits)
    known = {mutant_hints.test_key(m.nodeid) for m in manifest.tests}
    with progress.bar(f"mutants {assignment}", len(catalogue), "mutants") as line:

        def run_one(mutant: mutant_hints.Mutant) -> MutantOutcome:
            try:
                return _run_mutant(assignment, mutant, manifest, limits, exact)
            finally:
                line.update(1)

        with zygote.forking(), ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
            outcomes = list(pool.map(run_one, catalogue))
    rows = [f"{'mutant':34} {'points lost':>12}  caught  tests that lost points"]
    ok = bool(catalogue)
    for o in outcomes:
        unknown = set(o.mutant.breaks) - known
        verdict = "yes" if o.caught and o.exact and not unknown else "NO"
        ok &= verdict == "yes"
        lost = f"{o.lost:g} / {o.of:g}"
        rows.append(
            f"{o.mutant.id:34} {lost:>12}  {verdict:6}  {', '.join(sorted(o.broken)) or '-'}"
        )
        if o.error:
            rows.append(f"    error: {o.error}")
        if unknown:
            rows.append(f"    names tests that do not exist: {', '.join(sorted(unknown))}")
        if not o.exact and not o.error:
            rows.append(f"    catalogue says it breaks: {', '.join(o.mutant.breaks)}")
        if o.surprise:
            rows.append(f"    first unexpected failure: {o.surprise}")
    if not catalogue:
        rows.append("no mutants catalogued: tests/<assignment>/mutants.toml")
    return Verdict(ok, rows), outcomes
