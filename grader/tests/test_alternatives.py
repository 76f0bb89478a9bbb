"""Fairness: correct solutions written differently from the reference score full marks.

Each entry of ``alternatives.toml`` is the reference with regions rewritten another correct way
(logsumexp instead of a max shift, a loop instead of a vectorised formula, base 2 instead of e …),
and modules of its own added (an MHA over two files). It is graded, as students are, on the test
files it names, hidden tests included.
"""

import shutil
import tomllib
from pathlib import Path

import pytest

from grader import course
from grader.commands import selfcheck
from grader.controller import grading, mutant_hints
from grader.controller.runner import collect

CATALOGUE = Path(__file__).with_name("alternatives.toml")
ALTERNATIVES = tomllib.loads(CATALOGUE.read_text())["alternative"]


def build(alt: dict, root: Path) -> Path:
    """The alternative's package in ``root``: the reference with its regions replaced (each must
    still be in the reference, exactly once) and its own files added or replacing whole ones."""
    a = alt["assignment"]
    shutil.copytree(course.REFERENCE / a, root / a, ignore=shutil.ignore_patterns("__pycache__"))
    regions = [{"find": alt["find"], "replace": alt["replace"]}] if "find" in alt else []
    for n, region in enumerate([*regions, *alt.get("patch", [])]):
        patch = mutant_hints.Mutant(
            f"{alt['id']}#{n}", alt["file"], region["find"], region["replace"], (), ""
        )
        selfcheck.apply(patch, root / a)
    for name, source in alt.get("files", {}).items():
        (root / a / name).parent.mkdir(parents=True, exist_ok=True)
        (root / a / name).write_text(source)
    return root


@pytest.mark.timeout(300)
@pytest.mark.parametrize("alt", ALTERNATIVES, ids=[a["id"] for a in ALTERNATIVES])
def test_alternative_scores_full_marks(alt, tmp_path):
    a = alt["assignment"]
    root = build(alt, tmp_path / "impl")
    files = set(alt["tests"])
    manifest = collect(course.test_paths(a))
    graded = grading.grade(a, root, hidden=True, manifest=manifest, files=files)
    lost = {
        m.nodeid: graded.results[m.nodeid].output[-600:]
        for m in graded.metas
        if graded.results[m.nodeid].score < m.max_score
    }
    assert graded.max_score > 0, f"no graded test in {sorted(files)}"
    assert not lost, f"{alt['id']} ({alt['why']}) lost points:\n" + "\n\n".join(
        f"{k}:\n{v}" for k, v in lost.items()
    )
