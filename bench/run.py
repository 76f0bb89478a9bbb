"""``make bench``: the kit's speed, measured side by side as ratios on this machine.

Each row runs both sides in this one process run, alternating, and reports medians, so machine
load affects both alike. Nothing here asserts a time: the table is the result. Rows whose
deliverable does not exist yet say so instead of a number.

    python bench/run.py [--quick] [--out bench/results.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "reference"), str(ROOT / "tests")]


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Medians of a and b, run alternately (a, b, a, b, ...) after one warm-up each."""
    a(), b()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, acc in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


# --------------------------------------------------------------------------- rows


def grading_overhead(assignment: str, repeat: int) -> dict:
    """The isolated grader vs plain pytest, same tests, same tree (non-training tests)."""
    env = {**os.environ, "HYPOTHESIS_PROFILE": "grading", "HF_HUB_OFFLINE": "1"}
    py = sys.executable
    grade = [py, "-m", "grader", "grade", "-a", assignment, "--impl", "reference", "--hidden", "-q"]
    plain = [
        py,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"tests/{assignment}",
        "--impl",
        "reference",
    ]

    def run(cmd):
        return lambda: subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True)

    t_grade, t_plain = paired(run(grade), run(plain), repeat)
    return {
        "row": f"grade {assignment} (isolated) vs plain pytest",
        "ours_s": t_grade,
        "baseline_s": t_plain,
        "ratio": t_grade / t_plain,
        "goal": "<= 1.2x; assignment < 30 s",
    }


def attention_vs_torch(repeat: int) -> dict:
    import torch

    try:
        from a3_attention_bert import mha
    except ImportError:
        return {"row": "reference MHA vs nn.MultiheadAttention", "note": "n/a: not implemented yet"}
    torch.manual_seed(0)
    B, T, E, nh = 32, 128, 256, 8
    ref = torch.nn.MultiheadAttention(E, nh, batch_first=True)
    cls = next(getattr(mha, n) for n in dir(mha) if n.lower().startswith("multihead"))
    ours = cls.from_torch(ref) if hasattr(cls, "from_torch") else None
    if ours is None:
        return {"row": "reference MHA vs nn.MultiheadAttention", "note": "n/a: no loader found"}
    x = torch.randn(B, T, E, requires_grad=True)

    def step(module):
        def go():
            out, _ = module(x, x, x, need_weights=False)
            out.sum().backward()

        return go

    t_ours, t_torch = paired(step(ours), step(ref), repeat)
    return {"row": f"MHA fwd+bwd B={B} T={T} E={E} nh={nh}", "ours_s": t_ours, "baseline_s": t_torch,
            "ratio": t_ours / t_torch, "goal": "<= 1.3x"}  # fmt: skip


def batch_throughput(assignment: str) -> dict:
    """Submissions per minute: copies of the reference, graded in parallel (-j 2)."""
    from grader import assignments, batch

    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp, "subs")
        for i in range(6):
            dest = subs / f"s{i}" / assignment
            dest.mkdir(parents=True)
            for f in (assignments.REFERENCE / assignment).glob("*.py"):
                (dest / f.name).write_text(f.read_text())
        start = time.perf_counter()
        graded = batch.grade_all(subs, assignment, Path(tmp, "out"), jobs=2)
        seconds = time.perf_counter() - start
    return {"row": f"batch regrade {assignment}, -j 2 ({len(graded)} submissions)", "ours_s": seconds,
            "note": f"{len(graded) / seconds * 60:.1f} submissions per minute"}  # fmt: skip


# --------------------------------------------------------------------------- table


def fmt(row: dict) -> str:
    ours = f"{row['ours_s']:.2f} s" if "ours_s" in row else ""
    base = f"{row['baseline_s']:.2f} s" if "baseline_s" in row else ""
    ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
    return f"| {row['row']} | {ours} | {base} | {ratio} | {row.get('goal', '')} | {row.get('note', '')} |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    args = p.parse_args(argv)
    repeat = 2 if args.quick else 5
    import torch

    from grader import assignments

    rows = []
    for name in assignments.names():
        rows.append(grading_overhead(name, max(1, repeat // 2)))
    rows.append(attention_vs_torch(repeat * 2))
    rows.append(batch_throughput("a1_lm_basics"))
    header = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, Python {platform.python_version()}. "
        "Medians of alternating runs.",
        "",
        "| what | ours | baseline | ratio | goal | note |",
        "|---|---|---|---|---|---|",
    ]
    text = "\n".join(header + [fmt(r) for r in rows]) + "\n"
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
