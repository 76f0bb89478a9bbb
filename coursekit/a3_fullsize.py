"""Full-size fine-tuning on SST-2 — the figures in the README, and the reference artifact.

    python -m coursekit.a3_fullsize --recipe lora --steps 4000          # writes the artifact
    python -m coursekit.a3_fullsize --recipe scratch --steps 4000       # same budget, random init

Runs the graded pieces of ``a3_attention_bert/finetune.py`` from the tree given by ``--impl``
(``reference``, ``student_template`` or a path), so students run the same command on their own
code. Prints dev and test accuracy and the predictions for four sentences, writes the curve PNG
and, for ``lora``, the artifact the accuracy check grades, plus a JSON report beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from coursekit import a3_finetune as kit

KIT_ROOT = Path(__file__).resolve().parent.parent
OWN_SENTENCES = [  # H4.3: two positive, two negative sentences of our own
    "a warm, funny and beautifully acted film that stays with you",
    "the best thing i have seen in a cinema all year",
    "a tedious mess with a plot that makes no sense at all",
    "i wanted my two hours back before the opening credits ended",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--impl", default="reference", help="reference, student_template, or a path")
    p.add_argument("--recipe", choices=("lora", "full", "scratch"), default="lora")
    p.add_argument(
        "--model", default=kit.DEFAULT_MODEL, help="hub name or path (default: embedded MiniLM-L6)"
    )
    p.add_argument("--steps", type=int, default=4000, help="training budget in steps (batch 32)")
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 for LoRA, 1e-4 otherwise")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (faster on recent CPUs)")
    p.add_argument(
        "--out", default=None, help="artifact path (default: the tree's artifacts/ folder)"
    )
    args = p.parse_args(argv)

    impl = (
        KIT_ROOT / args.impl if args.impl in ("reference", "student_template") else Path(args.impl)
    )
    sys.path.append(str(impl.resolve()))
    from a3_attention_bert import finetune as ft
    from transformers import AutoTokenizer

    torch.manual_seed(0)
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
    lr = args.lr or {"lora": 1e-3, "full": 1e-4, "scratch": 1e-4}[args.recipe]
    warmup = 0.1 if args.recipe == "scratch" else kit.FitConfig.warmup_fraction
    cfg = kit.FitConfig(lr=lr, max_steps=args.steps, bf16=args.bf16, warmup_fraction=warmup)
    train, dev, test = kit.load_sst2("train"), kit.load_sst2("dev"), kit.load_sst2("test")
    history = kit.fit(model, tokenizer, train, ft.train_step, cfg, dev=dev)
    dev_acc = kit.accuracy(ft.predict(model, tokenizer, dev[0]), dev[1])
    t0 = time.monotonic()
    test_acc = kit.accuracy(ft.predict(model, tokenizer, test[0]), test[1])
    predict_s = time.monotonic() - t0
    own = ft.predict(model, tokenizer, OWN_SENTENCES)
    out_dir = Path(args.out).parent if args.out else impl / "a3_attention_bert" / "artifacts"
    curve = kit.plot_history(
        history, out_dir / f"sst2_{args.recipe}_curve.png", f"SST-2, {args.recipe}"
    )
    report = {
        "recipe": args.recipe,
        "model": args.model,
        "trainable_parameters": trainable,
        "train_seconds": round(history.seconds, 1),
        "steps": len(history.steps),
        "dev_accuracy": round(dev_acc, 4),
        "test_accuracy": round(test_acc, 4),
        "test_predict_seconds": round(predict_s, 1),
        "own_sentences": dict(zip(OWN_SENTENCES, own, strict=True)),
        "curve": str(curve),
        "torch_threads": torch.get_num_threads(),
    }
    if args.recipe == "lora":
        artifact = Path(args.out) if args.out else out_dir / "sst2_classifier.safetensors"
        ft.save_artifact(model, artifact, base_model=args.model, num_labels=2)
        report["artifact"] = str(artifact)
        report["artifact_bytes"] = artifact.stat().st_size
    (out_dir / f"sst2_{args.recipe}_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
