"""Full-size runs of assignment 1's training deliverables — the figures in the README.

    python -m coursekit.a1_lm_basics.fullsize bigram     # H1.4: the handout's recipe, dev perplexity
    python -m coursekit.a1_lm_basics.fullsize charlm     # H1.6: held-out perplexity, passages, samples, PNG
    python -m coursekit.a1_lm_basics.fullsize dan        # H1.7: IMDB test accuracy (the handout: ~83.5%)

Runs the graded pieces from the tree given by ``--impl`` (``reference``, ``student_template`` or a
path), so students run the same command on their own code. Prints a JSON report and writes it
(and the char LM's loss-per-epoch PNG) to ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import torch

from coursekit import impl_root


def _module(impl: str, name: str):
    sys.path.append(str(impl_root(impl)))
    return importlib.import_module(f"a1_lm_basics.{name}")


def bigram(args) -> dict:
    from coursekit.a1_lm_basics import bigram as kit

    cfg = kit.BigramConfig(iterations=args.iterations or kit.BigramConfig.iterations)
    result = kit.run(
        _module(args.impl, "bigram_lm"),
        cfg,
        train_split=args.train_split,
        eval_split="test",
        progress=True,
    )
    return {"config": vars(cfg), "train_split": args.train_split, **result}


def charlm(args) -> dict:
    from coursekit.a1_lm_basics import charlm as kit

    cfg = kit.CharConfig(epochs=args.epochs or kit.CharConfig.epochs)
    out = Path(args.out)
    result = kit.run(
        _module(args.impl, "char_rnn"),
        cfg,
        progress=True,
        plot=out / "charlm_loss_per_epoch.png",
        passages=True,
        sample_chars=300,
    )
    return {"config": vars(cfg), **result}


def dan(args) -> dict:
    from coursekit.a1_lm_basics import dan as kit

    cfg = kit.DanConfig(epochs=args.epochs or kit.DanConfig.epochs)
    result = kit.run(
        _module(args.impl, "dan"), cfg, train="train", evaluate=["val", "test"], progress=True
    )
    return {"config": vars(cfg), **result}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run", choices=("bigram", "charlm", "dan"))
    p.add_argument("--impl", default="reference", help="reference, student_template, or a path")
    p.add_argument("--out", default="out/a1", help="folder for the report and plots")
    p.add_argument("--iterations", type=int, default=None, help="bigram: SGD steps (40,000)")
    p.add_argument("--epochs", type=int, default=None, help="charlm / dan: epochs")
    p.add_argument(
        "--train-split",
        default="valid",
        help="bigram: WikiText-2 split to train on (online: train)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: these models are small, and extra threads only wait)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"bigram": bigram, "charlm": charlm, "dan": dan}[args.run](args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.run}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
