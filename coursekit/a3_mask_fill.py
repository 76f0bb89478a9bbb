"""[MASK] completion with a real BERT — a demo of ``a3_attention_bert/mask_fill.py`` (not graded).

    python -m coursekit.a3_mask_fill "the capital of france is"                      # greedy, 5 masks
    python -m coursekit.a3_mask_fill -n 8 --strategy top_k -k 10 --seed 1 "once upon a time"
    python -m coursekit.a3_mask_fill --impl student_template --model PATH "my prompt"

Runs ``complete`` from the tree given by ``--impl`` (``reference``, ``student_template`` or a path)
with a pretrained masked LM: ``bert-base-uncased`` by default, or any hub name or local folder of a
checkpoint *with* its masked-LM head. Where none can be loaded — offline, as on the course machines,
where the only model shipped (MiniLM-L6) has no masked-LM head — it says so and exits with status 1;
the graded tests check ``complete`` on small masked LMs they build themselves.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "bert-base-uncased"
HUB = ("huggingface.co", 443)


class NoMaskedLM(RuntimeError):
    """No pretrained masked LM could be loaded."""


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick connection test: without it, loading a hub name offline retries for about 50 s."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    try:
        socket.create_connection(HUB, timeout=timeout).close()
    except OSError:
        return False
    return True


def load_masked_lm(name: str):
    """(model, tokenizer) of a pretrained masked LM: a local folder, the hub, or (offline) the cache.

    Raises:
        NoMaskedLM: the checkpoint cannot be loaded, or it has no trained masked-LM head (loading
            one without it gives a freshly initialised head, whose completions are noise).
    """
    offline = not Path(name).exists() and not _hub_reachable()
    if offline:  # the local cache only; set before transformers reads it, or every probe retries
        os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()  # the load report would list the head as MISSING; checked below
    try:
        return _load(AutoModelForMaskedLM, AutoTokenizer, name)
    except OSError as exc:
        if offline:
            raise NoMaskedLM(
                f"{name!r} is not in the local Hugging Face cache and the hub cannot be reached "
                "(offline). No masked-LM checkpoint is available on this machine: the MiniLM-L6 "
                "shipped with the kit has no masked-LM head. Run this where huggingface.co is "
                "reachable, or pass --model with the folder of a downloaded BERT masked LM."
            ) from None
        raise NoMaskedLM(f"could not load {name!r}: {exc}") from exc


def _load(model_cls, tokenizer_cls, name: str):
    model, info = model_cls.from_pretrained(name, output_loading_info=True)
    untrained = [k for k in info.get("missing_keys", ()) if k.endswith("weight")]
    if untrained:
        raise NoMaskedLM(
            f"{name!r} has no trained masked-LM head ({', '.join(sorted(untrained)[:3])} ... "
            "missing from the checkpoint): its completions would be noise. Use a masked-LM "
            "checkpoint such as bert-base-uncased."
        )
    return model.eval(), tokenizer_cls.from_pretrained(name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("prompts", nargs="+", help="text to continue")
    p.add_argument("--impl", default="reference", help="reference, student_template, or a path")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"default: {DEFAULT_MODEL}")
    p.add_argument("-n", "--masks", type=int, default=5, help="tokens to generate (default 5)")
    p.add_argument("--strategy", choices=("greedy", "top_k"), default="greedy")
    p.add_argument("-k", type=int, default=5, help="top_k: candidates per position (default 5)")
    p.add_argument("--seed", type=int, default=0, help="top_k: seed of the generator")
    args = p.parse_args(argv)

    impl = (
        KIT_ROOT / args.impl if args.impl in ("reference", "student_template") else Path(args.impl)
    )
    sys.path.append(str(impl.resolve()))
    from a3_attention_bert import mask_fill

    try:
        model, tokenizer = load_masked_lm(args.model)
    except NoMaskedLM as exc:
        print(f"No masked LM available: {exc}", file=sys.stderr)
        return 1
    for prompt in args.prompts:
        text = mask_fill.complete(model, tokenizer, prompt, args.masks, strategy=args.strategy,
                                  k=args.k, seed=args.seed)  # fmt: skip
        print(f"{prompt!r} -> {text!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
