"""``make so-spread``: the spread of the Stack Overflow Trainer test's validation accuracy.

Trains the test's tiny BERT with the reference ``build_trainer`` exactly as test 5.2 does, over
choices the handout leaves to the student, and prints each run's accuracy and the least seen:

- ``splits``: N random stratified splits (the reference ``load_stackoverflow`` with seed k) and
  Trainer seed 100 + k — what the test faced when it trained on the student's own split;
- ``seeds``: the test's fixed split (``coursekit.a3_attention_bert.stackoverflow.fixed_splits``), Trainer seeds
  0 … N-1 — what it faces now.

    python bench/so_spread.py [--runs 40] [--hidden 64] [--lr 5e-3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [
    str(ROOT),
    str(ROOT / "reference"),
    str(ROOT / "tests"),
    str(ROOT / "tests" / "a3_attention_bert"),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--hidden", type=int, default=None, help="default: the test's")
    p.add_argument("--lr", type=float, default=None, help="default: the test's")
    p.add_argument("--only", choices=("splits", "seeds"))
    args = p.parse_args(argv)
    import test_stackoverflow as T
    import torch
    from a3_attention_bert import stackoverflow as so
    from transformers import AutoTokenizer

    from coursekit.a3_attention_bert import finetune as kit
    from coursekit.a3_attention_bert import models as a3_models
    from coursekit.a3_attention_bert import stackoverflow as kso

    torch.set_num_threads(1)
    hidden, lr = args.hidden or T.HIDDEN, args.lr or T.LR
    root = Path(tempfile.mkdtemp())
    kso.write_archive(root, T.SNIPPETS, T.SIZES)  # the test's files
    tokenizer = AutoTokenizer.from_pretrained(kit.model_path())

    def run(splits, trainer_seed: int) -> float:
        tokenized = kso.tokenized(splits, tokenizer, max_length=32)
        torch.manual_seed(0)
        model = a3_models.bert(
            "sequence_classification",
            vocab_size=tokenizer.vocab_size,
            hidden_size=hidden,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=64,
            num_labels=4,
        )
        with tempfile.TemporaryDirectory() as out:
            so.build_trainer(
                model,
                tokenized,
                out,
                epochs=T.EPOCHS,
                lr=lr,
                batch_size=T.BATCH_SIZE,
                seed=trainer_seed,
            ).train()
        val = splits["validation"]
        questions = {t: T.TAGS[y] for t, y in zip(val["text"], val["label"], strict=True)}
        return T._accuracy(model, tokenizer, questions)

    kinds = {
        "splits": lambda k: (
            so.load_stackoverflow(str(root), validation_fraction=0.25, seed=k),
            100 + k,
        ),
        "seeds": lambda k: (kso.fixed_splits(root, T.TAGS), k),
    }
    print(
        f"hidden {hidden}, lr {lr}, {T.EPOCHS} epochs, batch {T.BATCH_SIZE}, {args.runs} runs each"
    )
    for kind, make in kinds.items():
        if args.only and kind != args.only:
            continue
        start, accs = time.perf_counter(), []
        for k in range(args.runs):
            accs.append(run(*make(k)))
        low = [f"{k}: {a:.2f}" for k, a in enumerate(accs) if a < 0.9]
        print(
            f"{kind}: least {min(accs):.2f}, mean {statistics.mean(accs):.3f}, below 0.9: "
            f"{len(low)} {low} ({time.perf_counter() - start:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
