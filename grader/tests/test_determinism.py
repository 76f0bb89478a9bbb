"""Grading is deterministic: the same submission gets the same results, run after run.

Five gradings each of the reference, the template and three mutants of assignment 1 (derandomized
Hypothesis in the grading profile, seeded data), compared test by test. Two of its test files
keep it affordable: the Hypothesis-drawn properties of softmax and perplexity, the part whose
inputs change between runs unless derandomized. (Training runs are seeded and use one thread;
``validate`` and ``mutants`` grade them on every CI run and require the same score each time.)
"""

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader import course
from grader.commands import selfcheck
from grader.controller import grading, mutant_hints
from grader.controller.runner import collect

A = "a1_lm_basics"
RUNS = 5
MUTANTS = ("softmax-no-max-shift", "ce-sum-not-mean", "ce-grad-wrong-sign")
FILES = {"test_softmax.py", "test_perplexity.py"}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    out = {"reference": course.REFERENCE, "template": course.TEMPLATE}
    for mutant in (m for m in mutant_hints.load(A) if m.id in MUTANTS):
        root = tmp_path_factory.mktemp(mutant.id)
        shutil.copytree(course.REFERENCE / A, root / A)
        selfcheck.apply(mutant, root / A)
        out[mutant.id] = root
    return out


@pytest.mark.timeout(900)
def test_repeated_gradings_agree(trees):
    manifest = collect(course.test_paths(A))

    def fingerprint(impl: Path):
        g = grading.grade(A, impl, hidden=True, manifest=manifest, files=FILES)
        return g.score, tuple((n, r.score, r.status) for n, r in sorted(g.results.items()))

    jobs = [(name, impl) for name, impl in trees.items() for _ in range(RUNS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        prints = list(pool.map(lambda job: (job[0], fingerprint(job[1])), jobs))
    by_tree: dict[str, set] = {}
    for name, fp in prints:
        by_tree.setdefault(name, set()).add(fp)
    assert set(by_tree) == {"reference", "template", *MUTANTS}
    for name, seen in by_tree.items():
        assert len(seen) == 1, f"{name}: {len(seen)} different results in {RUNS} gradings"
    scores = {name: next(iter(seen))[0] for name, seen in by_tree.items()}
    assert scores["template"] == 0 < min(scores[m] for m in MUTANTS)
    assert max(scores[m] for m in MUTANTS) < scores["reference"]
