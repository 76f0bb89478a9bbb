"""``make bench``: the kit's speed, measured side by side as ratios on this machine.

Each row runs both sides in this one process run, alternating, and reports medians, so machine
load affects both alike. Nothing here asserts a time: the table is the result. Rows whose
deliverable does not exist yet say so instead of a number.

    python bench/run.py [--quick] [--out bench/results.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
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
    # Both sides as graded: one compute thread, the grading profile (the grader's children run so).
    env = {
        **os.environ,
        "HYPOTHESIS_PROFILE": "grading",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
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
    """The reference multi-head attention (assignment 3) vs nn.MultiheadAttention, same weights."""
    import torch
    from a3_attention_bert.mha import MultiHeadAttention

    torch.manual_seed(0)
    B, T, E, nh = 32, 128, 256, 8
    ref = torch.nn.MultiheadAttention(E, nh, batch_first=True)
    ours = MultiHeadAttention(E, nh, batch_first=True).load_from(ref)
    x = torch.randn(B, T, E, requires_grad=True)

    def step(module):
        def go():
            out, _ = module(x, x, x, need_weights=False)
            out.sum().backward()

        return go

    t_ours, t_torch = paired(step(ours), step(ref), repeat)
    return {
        "row": f"MHA fwd+bwd vs nn.MultiheadAttention (B={B}, T={T}, E={E}, {nh} heads)",
        "ours_s": t_ours,
        "baseline_s": t_torch,
        "ratio": t_ours / t_torch,
        "goal": "<= 1.3x",
    }


def lstm_vs_torch(repeat: int) -> dict:
    """The reference LSTM of nn.Parameters (assignment 2, a Python loop over time) vs nn.LSTM."""
    import torch
    from a2_seq2seq.lstm import LSTM

    torch.manual_seed(0)
    B, T, C, H = 32, 50, 64, 128
    ours, ref = LSTM(C, H), torch.nn.LSTM(C, H, batch_first=True)
    x = torch.randn(B, T, C)

    def ours_step():
        h, c = ours(x)
        (h.sum() + c.sum()).backward()

    def ref_step():
        _, (h, c) = ref(x)
        (h.sum() + c.sum()).backward()

    t_ours, t_torch = paired(ours_step, ref_step, repeat)
    return {
        "row": f"LSTM fwd+bwd vs nn.LSTM (B={B}, T={T}, C={C}, H={H})",
        "ours_s": t_ours,
        "baseline_s": t_torch,
        "ratio": t_ours / t_torch,
        "note": "a loop over time steps against one fused kernel",
    }


def finetune_vs_trainer(target: float, max_steps: int, eval_every: int) -> dict:
    """Training seconds until SST-2 dev accuracy reaches ``target``: the kit's recipe (``fit``
    with the reference's ``train_step``) vs Hugging Face ``Trainer`` on the same LoRA model,
    data, batch size, optimiser, schedule and evaluation (evaluation time excluded on both)."""
    import torch
    from a3_attention_bert import finetune as ft
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from coursekit.a3_attention_bert import finetune as kit

    train, dev = kit.load_sst2("train"), kit.load_sst2("dev")
    tokenizer = AutoTokenizer.from_pretrained(kit.model_path())
    cfg = kit.FitConfig(max_steps=max_steps, eval_every=eval_every, target_accuracy=target)

    torch.manual_seed(0)
    model = ft.build_model(lora_r=8)
    history = kit.fit(model, tokenizer, train, ft.train_step, cfg, dev=dev, progress=False)
    ours = _time_to(target, history.eval_steps, history.eval_accuracy, history.eval_train_seconds)

    class Rows(torch.utils.data.Dataset):
        def __init__(self, sentences, labels):
            enc = tokenizer(list(sentences), truncation=True, max_length=cfg.max_length)
            self.rows = [
                {"input_ids": i, "attention_mask": m, "labels": y}
                for i, m, y in zip(enc["input_ids"], enc["attention_mask"], labels, strict=True)
            ]

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, i):
            return self.rows[i]

    steps, accs, seconds = [], [], []

    class EvaluateAndStop(TrainerCallback):
        start, evaluating = 0.0, 0.0

        def on_train_begin(self, args, state, control, **kw):
            self.start = time.monotonic()

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % eval_every:
                return
            began = time.monotonic()
            seconds.append(began - self.start - self.evaluating)
            steps.append(state.global_step)
            accs.append(kit.accuracy(kit.classify(model, tokenizer, dev[0]), dev[1]))
            model.train()
            self.evaluating += time.monotonic() - began
            control.should_training_stop = accs[-1] >= target

    torch.manual_seed(0)
    model = ft.build_model(lora_r=8)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_steps=max(1, int(cfg.warmup_fraction * max_steps)),
            lr_scheduler_type="linear",
            max_steps=max_steps,
            train_sampling_strategy="group_by_length",
            logging_strategy="no",
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            use_cpu=True,
            dataloader_num_workers=0,
            seed=cfg.seed,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Rows(*train),
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=[EvaluateAndStop()],
        )
        trainer.train()
    theirs = _time_to(target, steps, accs, seconds)
    row = {
        "row": f"SST-2 LoRA fine-tuning: training time to dev accuracy {target} vs Trainer",
        "goal": "no slower (<= 1.0x)",
    }
    reached = [
        f"{who}: step {r[0]}" if r else f"{who}: not reached in {max_steps} steps (best {best:.3f})"
        for who, r, best in (
            ("ours", ours, max(history.eval_accuracy, default=0)),
            ("Trainer", theirs, max(accs, default=0)),
        )
    ]
    row["note"] = "; ".join(reached) + f"; dev accuracy every {eval_every} steps"
    if ours and theirs:
        row.update(ours_s=ours[1], baseline_s=theirs[1], ratio=ours[1] / theirs[1])
    return row


def _time_to(target, steps, accs, seconds) -> tuple[int, float] | None:
    return next(((s, t) for s, a, t in zip(steps, accs, seconds, strict=True) if a >= target), None)


def accuracy_check_seconds(task: str = "sst2") -> dict:
    """An accuracy check as Gradescope runs it (one thread, the reference artifact, the test's
    own inputs: SST-2's 1,821 test sentences, or IMDB's graded held-out reviews cut to 256
    tokens, in a process of their own): ``predict_state`` (the plain-torch BERT, bfloat16 where
    the CPU has bfloat16 units, close calls again in float32) against transformers' model in
    float32; both must predict the same labels. The check imports no transformers model (its
    process pays only torch's import, timed apart); the baseline's imports come after it."""
    import torch

    start = time.perf_counter()
    from coursekit.a3_attention_bert import finetune as kit

    kit.model_path()
    imports = time.perf_counter() - start

    torch.set_num_threads(1)
    artifacts = ROOT / "reference" / "a3_attention_bert" / "artifacts"
    sys.path.insert(0, str(ROOT / "tests" / "a3_attention_bert"))
    import test_finetune as graded  # the checks' own inputs and sizes

    if task == "imdb":
        state, metadata = kit.read_artifact(artifacts / "imdb_classifier.safetensors")
        texts, labels = kit.load_imdb("heldout_test")
        texts, labels = texts[: graded.IMDB_REVIEWS], labels[: graded.IMDB_REVIEWS]
        options = {
            "max_length": kit.IMDB_MAX_LENGTH,
            "batch_size": graded.IMDB_BATCH,
            "recheck_margin": kit.IMDB_RECHECK_MARGIN,
        }
        what = f"IMDB accuracy check, 1 thread ({len(texts):,} held-out reviews, 256 tokens)"
    else:
        state, metadata = kit.read_artifact(artifacts / "sst2_classifier.safetensors")
        texts, labels = graded.sample_for_check(*kit.load_sst2("test"), graded.SST2_SENTENCES)
        options = {}
        what = f"SST-2 accuracy check, 1 thread ({len(texts):,} test sentences)"
    start = time.perf_counter()
    predicted = kit.predict_state(state, metadata, texts, **options)  # what the check runs
    seconds = time.perf_counter() - start
    acc = kit.accuracy(predicted, labels)
    from transformers import AutoTokenizer

    model = kit.fold_artifact(state, metadata)  # transformers' model, in float32
    tokenizer = AutoTokenizer.from_pretrained(kit.model_path())
    start = time.perf_counter()
    plain = kit.classify(model, tokenizer, texts, bf16=False, **options)
    baseline = time.perf_counter() - start
    same = plain == predicted
    torch.set_num_threads(os.cpu_count() or 1)
    return {
        "row": f"{what} vs float32",
        "ours_s": seconds,
        "baseline_s": baseline,
        "ratio": seconds / baseline,
        "goal": "<= 6 s, same predictions",
        "note": f"accuracy {acc:.4f}; predictions identical to float32: {same}; "
        f"imports before it {imports:.1f} s; "
        f"bfloat16 units: {kit.bf16_is_fast()}",
    }


def batch_throughput(assignment: str) -> dict:
    """Submissions per minute: copies of the reference, graded in parallel (-j 2)."""
    from grader import course
    from grader.commands import batch

    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp, "subs")
        for i in range(6):
            dest = subs / f"s{i}" / assignment
            dest.mkdir(parents=True)
            for f in (course.REFERENCE / assignment).glob("*.py"):
                (dest / f.name).write_text(f.read_text())
        start = time.perf_counter()
        graded = batch.grade_all(subs, assignment, Path(tmp, "out"), jobs=2)
        seconds = time.perf_counter() - start
    return {
        "row": f"batch regrade {assignment}, -j 2 ({len(graded)} submissions)",
        "ours_s": seconds,
        "note": f"{len(graded) / seconds * 60:.1f} submissions per minute",
    }


def cli_help(repeat: int = 5) -> dict:
    """``python -m grader --help`` (the commands import their modules only when they run)."""
    import subprocess

    def help_once() -> None:
        subprocess.run(
            [sys.executable, "-m", "grader", "--help"], cwd=ROOT, check=True, capture_output=True
        )

    seconds = median_seconds(help_once, repeat)
    return {"row": "`python -m grader --help`", "ours_s": seconds, "goal": "< 0.5 s"}


def boundary_call(calls: int = 2000) -> dict:
    """One call of a small deliverable through the boundary (a 4x5 float64 softmax: arguments
    and result cross as bytes) vs the same call in-process."""
    import torch
    from a1_lm_basics import softmax as local

    from grader.boundary.client import Boundary

    boundary = Boundary(ROOT / "reference", python=sys.executable, env=dict(os.environ))
    boundary.start(fork=True)
    remote = boundary.import_module("a1_lm_basics.softmax")
    x = torch.randn(4, 5, dtype=torch.float64)

    def through():
        for _ in range(calls):
            remote.softmax(x)

    def here():
        for _ in range(calls):
            local.softmax(x)

    try:
        t_remote, t_local = paired(through, here, 5)
    finally:
        boundary.close()
    per_call = (t_remote - t_local) / calls * 1e6
    return {
        "row": f"boundary: one call of a small deliverable ({calls:,} calls of softmax, 4x5)",
        "ours_s": t_remote,
        "baseline_s": t_local,
        "ratio": t_remote / t_local,
        "note": f"{per_call:.0f} µs per call added by the boundary",
    }


TEN_THOUSAND = """
import torch
from grader.testprocess.deliverables import deliverable

sm = deliverable("a1_lm_basics.softmax")


def test_ten_thousand_calls():
    x = torch.randn(8, 16, dtype=torch.float64)
    for _ in range(10_000):
        sm.softmax(x)
"""


def boundary_test_of_many_calls() -> dict:
    """A test that makes 10,000 calls of a deliverable: its duration with the boundary (as when
    grading) vs in-process (plain pytest)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        test = Path(tmp, "test_many_calls.py")
        test.write_text(TEN_THOUSAND)

        def duration(*extra: str) -> float:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--durations=1",
                    "--impl",
                    str(ROOT / "reference"),
                    "-o",
                    "timeout=600",
                    str(test),
                    *extra,
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(
                ln
                for ln in out.stdout.splitlines()
                if ln.rstrip().endswith("test_ten_thousand_calls")
            )
            return float(line.split("s", 1)[0])

        remote = statistics.median(duration("--grader-boundary") for _ in range(3))
        local = statistics.median(duration() for _ in range(3))
    return {
        "row": "boundary: a test with 10,000 calls",
        "ours_s": remote,
        "baseline_s": local,
        "ratio": remote / local,
        "note": "pytest's duration of the test itself",
    }


# Measured before the boundary (2026-11-27, the same flow: reference submission, one core,
# student user, recorded verdicts): the baseline the boundary must stay within 1.3x of.
GRADESCOPE_BEFORE = {"a1_lm_basics": 7.3, "a2_seq2seq": 8.0, "a3_attention_bert": 24.8}


@contextlib.contextmanager
def standin(assignment: str, impl: str = "reference"):
    """A stand-in /autograder for ``assignment``: the zip unpacked, a Python like Gradescope's,
    ``impl``'s files as the submission. Yields (root, env, command): run ``command`` (a list) with
    ``env`` to grade as Gradescope does; results.json lands in ``root/results``."""
    from grader import course, sandbox
    from grader.commands import package
    from grader.tests.conftest import standin_python

    tree = {"reference": course.REFERENCE, "template": course.TEMPLATE}[impl]
    root = Path(tempfile.mkdtemp(prefix="bench-autograder-"))
    try:
        root.chmod(0o755)
        archive = package.autograder(assignment, root / "build")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(root / "source")
        (root / "source" / "run_autograder").chmod(0o755)
        standin_python(root / "venv", root / "source" / "kit")
        user = sandbox.ensure_user("student") or ""
        (root / "submission").mkdir()
        for f in (tree / assignment).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                dest = root / "submission" / assignment / f.relative_to(tree / assignment)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(f.read_bytes())
        env = {
            **os.environ,
            "AUTOGRADER_ROOT": str(root),
            "GRADER_USER": user,
            "GRADER_PYTHON": str(root / "venv" / "bin" / "python"),
        }
        yield root, env, ["bash", str(root / "source" / "run_autograder")]
    finally:
        shutil.rmtree(root, ignore_errors=True)


TARGET_ONE_CORE = {"a1_lm_basics": 10.0, "a2_seq2seq": 12.0, "a3_attention_bert": 30.0}


def gradescope_flow(assignment: str, impl: str = "reference") -> dict:
    """``run_autograder`` on the reference (or template) submission as Gradescope runs it: the
    zip unpacked into a stand-in /autograder, one core (``taskset -c 0``), student code as an
    unprivileged user when run as root. The median and the range of five runs (this machine's
    timings spread by a fifth from one run to the next)."""
    from grader.tests.conftest import SYSTEM_PYTHON

    if not SYSTEM_PYTHON.exists() or not shutil.which("taskset"):
        return {
            "row": f"Gradescope flow {assignment}, 1 core",
            "note": "needs python3.11 and taskset",
        }
    with standin(assignment, impl) as (root, env, command):

        def once() -> float:
            start = time.perf_counter()
            subprocess.run(
                ["taskset", "-c", "0", *command], env=env, capture_output=True, check=True
            )
            return time.perf_counter() - start

        times = sorted(once() for _ in range(5))
        data = json.loads((root / "results" / "results.json").read_text())
    seconds = statistics.median(times)
    target = TARGET_ONE_CORE[assignment] if impl == "reference" else 5.0
    row = {
        "row": f"Gradescope flow {assignment}, {impl}, 1 core (taskset -c 0)",
        "ours_s": seconds,
        "goal": f"<= {target:g} s",
        "note": f"{data['score']:g} / {sum(t['max_score'] for t in data['tests']):g} points; "
        f"5 runs: {times[0]:.1f}-{times[-1]:.1f} s",
    }
    before = GRADESCOPE_BEFORE.get(assignment)
    if before and impl == "reference":
        row.update(baseline_s=before, ratio=seconds / before)
        row["note"] += "; baseline: measured before the boundary"
    return row


def grader_help_seconds() -> dict:
    """``python -m grader --help``: how long a newcomer waits for the usage text."""
    seconds = median_seconds(
        lambda: subprocess.run(
            [sys.executable, "-m", "grader", "--help"], cwd=ROOT, capture_output=True, check=True
        ),
        3,
    )
    return {"row": "python -m grader --help", "ours_s": seconds, "goal": "< 0.5 s"}


# --------------------------------------------------------------------------- table


def fmt(row: dict) -> str:
    ours = f"{row['ours_s']:.2f} s" if "ours_s" in row else ""
    base = f"{row['baseline_s']:.2f} s" if "baseline_s" in row else ""
    ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
    return (
        f"| {row['row']} | {ours} | {base} | {ratio} | {row.get('goal', '')} | "
        f"{row.get('note', '')} | {row.get('measured', '')} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="fewer repetitions, a lower target")
    p.add_argument("--no-finetune", action="store_true", help="skip the fine-tuning row (minutes)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    p.add_argument("--only", nargs="+", help="measure only these rows (keys), keep the rest")
    args = p.parse_args(argv)
    repeat = 2 if args.quick else 5
    import torch

    from grader import course

    rows = {
        **{
            f"grade-{name}": lambda n=name: grading_overhead(n, max(1, repeat // 2))
            for name in course.names()
        },
        "mha": lambda: attention_vs_torch(repeat * 2),
        "lstm": lambda: lstm_vs_torch(repeat * 2),
        "accuracy-check": accuracy_check_seconds,
        "accuracy-check-imdb": lambda: accuracy_check_seconds("imdb"),
        "finetune": lambda: finetune_vs_trainer(
            *((0.80, 400) if args.quick else (0.85, 1500)), eval_every=50 if args.quick else 100
        ),
        "batch": lambda: batch_throughput("a1_lm_basics"),
        "cli-help": lambda: cli_help(repeat),
        "boundary-call": boundary_call,
        "boundary-10k": boundary_test_of_many_calls,
        **{f"gradescope-{name}": lambda n=name: gradescope_flow(n) for name in course.names()},
        **{
            f"gradescope-template-{name}": lambda n=name: gradescope_flow(n, "template")
            for name in course.names()
        },
    }
    if args.no_finetune:
        del rows["finetune"]
    json_out = Path(args.out).with_suffix(".json")
    previous = {}
    if args.only:  # measure these rows again, keep the others from the last run
        if json_out.exists():
            previous = {r["key"]: r for r in json.loads(json_out.read_text()) if "key" in r}
        unknown = set(args.only) - set(rows)
        if unknown:
            p.error(f"unknown rows {sorted(unknown)}; known: {sorted(rows)}")
    measured = []
    for key, measure in rows.items():
        if args.only and key not in args.only:
            if key in previous:
                measured.append(previous[key])
            continue
        measured.append({"key": key, "measured": time.strftime("%Y-%m-%d"), **measure()})
    rows = measured
    header = [
        f"Measured on {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}; each row on the "
        "date it gives (`--only` measures some rows again and keeps the others). Medians of "
        "alternating runs.",
        "",
        "| what | ours | baseline | ratio | goal | note | measured |",
        "|---|---|---|---|---|---|---|",
    ]
    text = "\n".join(header + [fmt(r) for r in rows]) + "\n"
    Path(args.out).write_text(text)
    json_out.write_text(json.dumps(rows, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
