"""Full-size fine-tuning on SST-2 and on the IMDB subset — the figures in the README, and the
reference artifacts.

    python -m coursekit.a3_attention_bert.fullsize --recipe lora --steps 4000          # writes the artifact
    python -m coursekit.a3_attention_bert.fullsize --recipe scratch --steps 4000       # same budget, random init
    python -m coursekit.a3_attention_bert.fullsize --task imdb                         # LoRA on 2,000 reviews (H2.3)

Runs the graded pieces of ``a3_attention_bert/finetune.py`` from the tree given by ``--impl``
(``reference``, ``template`` or a folder), so students run the same command on their own
code. Prints dev and test accuracy and the predictions for four sentences, writes the curve PNG
and, for ``lora``, the artifact the accuracy check grades, plus a JSON report beside it.

``--task imdb`` trains on IMDB ``small_train`` (2,000 reviews cut to ``IMDB_MAX_LENGTH`` tokens) and
scores ``small_test`` (1,000, the students' dev reviews) cut as the accuracy check cuts (the check
itself scores held-out test reviews); it has no dev split (the curve is the training loss) and
writes ``imdb_classifier.safetensors`` and ``imdb_<recipe>_report.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from coursekit import impl_root
from coursekit.a3_attention_bert import finetune as kit

OWN_SENTENCES = [  # H4.3: two positive, two negative sentences of our own
    "a warm, funny and beautifully acted film that stays with you",
    "the best thing i have seen in a cinema all year",
    "a tedious mess with a plot that makes no sense at all",
    "i wanted my two hours back before the opening credits ended",
]


@dataclass(frozen=True)
class Task:
    title: str
    steps: int  # the default budget
    max_length: int  # tokens a text is cut to, in training and in the accuracy check
    batch_size: int
    lora_lr: float = 1e-3  # LoRA's default learning rate for this budget
    bf16_where_fast: bool = False  # bfloat16 without --bf16 where the CPU has units for it


TASKS = {
    "sst2": Task("SST-2", steps=4000, max_length=64, batch_size=32),
    # Reviews are long (median 220 tokens): 256 tokens keep most of each, and batches of 16 give
    # twice the updates of 32 for the same compute (the budget: kit.IMDB_STEPS).
    # Hundreds of steps, not thousands: twice SST-2's rate; a step costs 10x SST-2's: bfloat16.
    "imdb": Task(
        "IMDB",
        steps=kit.IMDB_STEPS,
        max_length=kit.IMDB_MAX_LENGTH,
        batch_size=16,
        lora_lr=kit.IMDB_LR,
        bf16_where_fast=True,
    ),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--impl", default="reference", help="reference, template, or a folder holding the packages"
    )
    p.add_argument("--task", choices=tuple(TASKS), default="sst2")
    p.add_argument("--recipe", choices=("lora", "full", "scratch"), default="lora")
    p.add_argument(
        "--model", default=kit.DEFAULT_MODEL, help="hub name or path (default: embedded MiniLM-L6)"
    )
    p.add_argument(
        "--steps", type=int, default=None, help="training budget in steps (default: the task's)"
    )
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 for LoRA, 1e-4 otherwise")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (faster on recent CPUs)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    p.add_argument(
        "--max-hours", type=float, default=3.0, help="safety stop: training ends after this long"
    )
    p.add_argument(
        "--out", default=None, help="artifact path (default: the tree's artifacts/ folder)"
    )
    args = p.parse_args(argv)

    impl = impl_root(args.impl)
    sys.path.append(str(impl))
    from a3_attention_bert import finetune as ft
    from transformers import AutoTokenizer

    task = TASKS[args.task]
    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(kit.model_path(args.model))
    model = ft.build_model(
        args.model,
        2,
        pretrained=args.recipe != "scratch",
        lora_r=8 if args.recipe == "lora" else None,
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    print(f"{args.recipe}: {trainable:,} trainable of {total:,} parameters")
    # From random weights a post-LayerNorm BERT needs a gentler start: at 5e-4 it collapsed to
    # one class (loss ln 2) for all 4,000 steps; at 1e-4 with 10% warm-up it learns (dev 0.79
    # after 800 steps).
    lr = args.lr or {"lora": task.lora_lr, "full": 1e-4, "scratch": 1e-4}[args.recipe]
    warmup = 0.1 if args.recipe == "scratch" else kit.FitConfig.warmup_fraction
    bf16 = args.bf16 or (task.bf16_where_fast and kit.bf16_is_fast())
    cfg = kit.FitConfig(
        lr=lr,
        max_steps=args.steps or task.steps,
        bf16=bf16,
        warmup_fraction=warmup,
        max_length=task.max_length,
        batch_size=task.batch_size,
        seed=args.seed,
        max_seconds=args.max_hours * 3600,
    )
    if args.task == "sst2":
        train, dev, test = kit.load_sst2("train"), kit.load_sst2("dev"), kit.load_sst2("test")
    else:  # no dev split: a budget in steps, nothing chosen on held-out reviews
        train, dev, test = kit.load_imdb("small_train"), None, kit.load_imdb("small_test")
    history = kit.fit(model, tokenizer, train, ft.train_step, cfg, dev=dev)
    dev_acc = None if dev is None else kit.accuracy(ft.predict(model, tokenizer, dev[0]), dev[1])
    t0 = time.monotonic()
    if args.task == "sst2":
        test_acc = kit.accuracy(ft.predict(model, tokenizer, test[0]), test[1])
    else:  # as the accuracy check scores it: cut to max_length (predict would read 512 tokens)
        test_acc = kit.accuracy(
            kit.classify(model, tokenizer, test[0], max_length=task.max_length), test[1]
        )
    predict_s = time.monotonic() - t0
    own = ft.predict(model, tokenizer, OWN_SENTENCES)
    out_dir = Path(args.out).parent if args.out else impl / "a3_attention_bert" / "artifacts"
    curve = kit.plot_history(
        history, out_dir / f"{args.task}_{args.recipe}_curve.png", f"{task.title}, {args.recipe}"
    )
    report = {
        "task": args.task,
        "recipe": args.recipe,
        "model": args.model,
        "trainable_parameters": trainable,
        "train_seconds": round(history.seconds, 1),
        "steps": len(history.steps),
        "batch_size": cfg.batch_size,
        "max_length": cfg.max_length,
        "bf16": cfg.bf16,
        "seed": args.seed,
        "dev_accuracy": None if dev_acc is None else round(dev_acc, 4),
        "test_accuracy": round(test_acc, 4),
        "test_predict_seconds": round(predict_s, 1),
        "own_sentences": dict(zip(OWN_SENTENCES, own, strict=True)),
        "curve": str(curve),
        "torch_threads": torch.get_num_threads(),
    }
    if args.recipe == "lora":
        artifact = Path(args.out) if args.out else out_dir / f"{args.task}_classifier.safetensors"
        ft.save_artifact(model, artifact, base_model=args.model, num_labels=2)
        report["artifact"] = str(artifact)
        report["artifact_bytes"] = artifact.stat().st_size
    (out_dir / f"{args.task}_{args.recipe}_report.json").write_text(json.dumps(report, indent=2))
    # The curve's data, to draw it again: kit.plot_history(kit.History(**json.load(f)), path).
    curve_data = {
        "steps": history.steps,
        "losses": [round(x, 4) for x in history.losses],
        "eval_steps": history.eval_steps,
        "eval_accuracy": [round(x, 4) for x in history.eval_accuracy],
    }
    (out_dir / f"{args.task}_{args.recipe}_history.json").write_text(json.dumps(curve_data))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
