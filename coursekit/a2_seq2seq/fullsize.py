"""Full-size training on Multi30k German→English (H3.6) — the figures in the assignment's README.

    python -m coursekit.a2_seq2seq.fullsize --model seq2seq            # LSTM Seq2Seq, no attention
    python -m coursekit.a2_seq2seq.fullsize --model seq2seq-attn       # with cosine attention
    python -m coursekit.a2_seq2seq.fullsize --model transformer
    python -m coursekit.a2_seq2seq.fullsize --model seq2seq-attn --teacher-forcing   # the other protocol

Trains the graded classes of ``a2_seq2seq`` from the tree given by ``--impl`` (``reference``,
``student_template`` or a path), so students run the same command on their own code. Prints the
dev perplexity after every epoch and a JSON report at the end (also written with ``--out``).
The protocols are explained in ``coursekit/a2_seq2seq/translation.py``: figures of the ``source`` protocol
(the default, the handout's) compare across models; teacher-forced figures do not.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

import torch

from coursekit import impl_root
from coursekit.a2_seq2seq import translation as kit


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--impl", default="reference", help="reference, student_template, or a path")
    p.add_argument("--model", choices=kit.MODELS, default="transformer")
    p.add_argument("--teacher-forcing", action="store_true", help="Seq2Seq: feed the gold words")
    defaults = kit.TranslationConfig()
    for f in fields(kit.TranslationConfig):
        if f.name in ("model", "teacher_forcing"):
            continue
        kind = str if f.name == "model_type" else (float if isinstance(f.default, float) else int)
        p.add_argument(
            f"--{f.name.replace('_', '-')}", type=kind, default=getattr(defaults, f.name)
        )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default=None, help="write the JSON report here too")
    args = p.parse_args(argv)

    sys.path.append(str(impl_root(args.impl)))
    from a2_seq2seq import seq2seq, transformer

    if args.threads:
        torch.set_num_threads(args.threads)
    options = {f.name: getattr(args, f.name) for f in fields(kit.TranslationConfig)}
    cfg = kit.TranslationConfig(**options)
    module = transformer if cfg.model == "transformer" else seq2seq
    print(f"{cfg.model} ({cfg.protocol} protocol) on Multi30k de→en", flush=True)
    result = kit.run(module, cfg, progress=True, every_epoch=True)
    report = {
        "model": cfg.model,
        "protocol": cfg.protocol,
        "dev_perplexity": round(result["perplexity"], 2),
        "unigram_perplexity": round(result["unigram_perplexity"], 2),
        "dev_perplexity_by_epoch": [round(x, 2) for x in result["dev_perplexities"]],
        "train_loss_by_epoch": [round(x, 3) for x in result["epoch_losses"]],
        "train_pairs": result["train_pairs"],
        "dev_pairs": result["dev_pairs"],
        "vocab": result["vocab"],
        "parameters": result["parameters"],
        "train_seconds": round(result["train_seconds"], 1),
        "seconds": round(result["seconds"], 1),
        "torch_threads": torch.get_num_threads(),
        "config": asdict(cfg),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
