"""[MASK] completion with a pretrained masked LM: a demo of ``a3_attention_bert/mask_fill.py``.

    python -m coursekit.a3_attention_bert.mask_fill "the capital of france is"                      # greedy, 5 masks
    python -m coursekit.a3_attention_bert.mask_fill -n 8 --strategy top_k -k 10 --seed 1 "once upon a time"
    python -m coursekit.a3_attention_bert.mask_fill --impl template --model PATH "my prompt"
    python -m coursekit.a3_attention_bert.mask_fill --model minilm-head "my prompt"                 # the kit's head

Runs ``complete`` from the tree given by ``--impl`` (``reference``, ``template`` or a folder)
with a pretrained masked LM: ``bert-base-uncased`` by default, or any hub name or local folder of a
checkpoint *with* its masked-LM head. Where ``bert-base-uncased`` cannot be loaded (offline, as on
the course machines) it says so in one line and uses the kit's own masked LM: the shipped MiniLM-L6
with a head trained here (``coursekit/a3_attention_bert/mlm_head.py``; ``--model minilm-head`` asks for it). That
head is weak (top-1 on held-out masked tokens in the README): its completions show the algorithm
running, not what BERT writes. An explicit ``--model`` that cannot be loaded exits with status 1.
Not graded: the graded tests check ``complete`` on small masked LMs they build themselves.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from coursekit import impl_root

DEFAULT_MODEL = "bert-base-uncased"
# the kit's MiniLM-L6 + trained head (coursekit/a3_attention_bert/artifacts/)
HEAD_MODEL = "minilm-head"
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
                f"(offline). Run this where huggingface.co is reachable, pass --model with the "
                f"folder of a downloaded BERT masked LM, or --model {HEAD_MODEL} for the kit's "
                "small one."
            ) from None
        raise NoMaskedLM(f"could not load {name!r}: {exc}") from exc


def load_head_model():
    """(model, tokenizer) of the kit's masked LM: MiniLM-L6 with the head trained and shipped in
    ``coursekit/a3_attention_bert/artifacts/`` (see ``coursekit/a3_attention_bert/mlm_head.py``)."""
    from coursekit.a3_attention_bert import mlm_head as a3_mlm_head

    return a3_mlm_head.load_head()


def _head_note() -> str:
    from coursekit.a3_attention_bert import mlm_head as a3_mlm_head

    meta = a3_mlm_head.read_metadata()
    return (
        f"the kit's MiniLM-L6 masked-LM head ({HEAD_MODEL}: top-1 {float(meta['top1']):.0%} on "
        f"held-out masked tokens, unigram baseline {float(meta['unigram_top1']):.0%})"
    )


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
    p.add_argument(
        "--impl", default="reference", help="reference, template, or a folder holding the packages"
    )
    p.add_argument(
        "--model",
        help=f"a masked-LM name or folder, or {HEAD_MODEL} (default: {DEFAULT_MODEL}, else "
        f"{HEAD_MODEL} where it cannot be loaded)",
    )
    p.add_argument("-n", "--masks", type=int, default=5, help="tokens to generate (default 5)")
    p.add_argument("--strategy", choices=("greedy", "top_k"), default="greedy")
    p.add_argument("-k", type=int, default=5, help="top_k: candidates per position (default 5)")
    p.add_argument("--seed", type=int, default=0, help="top_k: seed of the generator")
    args = p.parse_args(argv)

    impl = impl_root(args.impl)
    sys.path.append(str(impl))
    from a3_attention_bert import mask_fill

    if args.model == HEAD_MODEL:
        print(f"Using {_head_note()}.", file=sys.stderr)
        model, tokenizer = load_head_model()
    else:
        try:
            model, tokenizer = load_masked_lm(args.model or DEFAULT_MODEL)
        except NoMaskedLM as exc:
            if args.model is not None:  # asked for by name: no silent substitute
                print(f"No masked LM available: {exc}", file=sys.stderr)
                return 1
            print(f"{DEFAULT_MODEL} cannot be loaded here; using {_head_note()}.", file=sys.stderr)
            model, tokenizer = load_head_model()
    for prompt in args.prompts:
        try:
            text = mask_fill.complete(
                model,
                tokenizer,
                prompt,
                args.masks,
                strategy=args.strategy,
                k=args.k,
                seed=args.seed,
            )
        except NotImplementedError as exc:
            hint = "fill it in, or run the reference (make mask-fill IMPL=reference)"
            print(f"complete() in {impl} is not written yet ({exc}): {hint}.", file=sys.stderr)
            return 1
        print(f"{prompt!r} -> {text!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
