"""Translation support for assignment 2 (H3.6): Multi30k German→English, tokenising, vocabularies,
length-bucketed batches, the training loop with a progress bar, and dev perplexity.

Not graded: it builds and trains the student's ``Encoder`` / ``Decoder`` / ``Seq2Seq``
(``a2_seq2seq/seq2seq.py``) and ``TransformerTranslator`` (``a2_seq2seq/transformer.py``).

Every sentence becomes ``<sos> w_1 .. w_n <eos>``; both vocabularies put the four specials at the
same ids (``<pad>`` 0, ``<unk>`` 1, ``<sos>`` 2, ``<eos>`` 3). The scored words of a target are
``w_1 .. w_n <eos>`` (everything after ``<sos>``); perplexity is exp of their mean negative
log-likelihood, token-weighted over the whole dev set, padding ignored. What a model may condition
on when it scores target word t (the *protocol*) decides what the number means:

- ``source`` (the handout's protocol): the source sentence only. The Transformer scores target word
  t at position t of the source (both padded to a common length); Seq2Seq decodes greedily,
  feeding its own previous word. Both models train the same way they are scored.
- ``teacher-forcing`` (Seq2Seq only): the source and the gold words 1 .. t-1. Lower perplexity,
  a different (easier) quantity: never compare it with the other protocol's figures.

The figures are the kit's own: dev perplexity is computed here from the scores the student's model
gives, and the model never sees a dev word before it has scored it (teacher-forced, it is given
the gold words one more at a time: :func:`heldout_scores`). So a graded run's figure depends on the
model alone, whatever process the model lives in (``grader.boundary``). The model trains where it
lives: its training loss and optimizer are built there (``coursekit.a2_seq2seq.builders``).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.a2_seq2seq.builders import translation_scores
from coursekit.data import data_file
from grader.testprocess.deliverables import build

PAD, UNK, SOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<sos>", "<eos>")
MODELS = ("seq2seq", "seq2seq-attn", "transformer")
SPLITS = ("train", "val", "test_2016_flickr")  # Multi30k task 1: 29,000 / 1,014 / 1,000 pairs
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(line: str) -> list[str]:
    """Lower-cased words and punctuation marks (``\\w`` includes umlauts and ß)."""
    return _TOKEN.findall(line.lower())


@dataclass
class Vocab:
    """Id i is ``itos[i]``; the four specials first. Unknown words map to ``<unk>``."""

    itos: list[str]
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 2) -> Vocab:
        """Words seen at least ``min_freq`` times, most frequent first (ties alphabetical)."""
        counts = Counter(w for s in sentences for w in s)
        words = sorted(
            (w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w)
        )
        return cls([*SPECIALS, *words])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """``<sos>`` ids ``<eos>``."""
        return [SOS, *(self.stoi.get(w, UNK) for w in tokens), EOS]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]


def load_pairs(
    split: str, *, limit: int | None = None, max_len: int | None = None
) -> list[tuple[list[str], list[str]]]:
    """Tokenised (German, English) pairs of a Multi30k split, in file order.

    ``max_len`` drops pairs with a side longer than that many tokens; ``limit`` keeps the first
    pairs that remain."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    de = data_file("multi30k", f"{split}.de").read_text(encoding="utf-8").splitlines()
    en = data_file("multi30k", f"{split}.en").read_text(encoding="utf-8").splitlines()
    pairs = []
    for src, tgt in zip(de, en, strict=True):
        s, t = tokenize(src), tokenize(tgt)
        if max_len is not None and (len(s) > max_len or len(t) > max_len):
            continue
        pairs.append((s, t))
        if limit is not None and len(pairs) == limit:
            break
    return pairs


def _pad(rows: Sequence[Sequence[int]], length: int) -> Tensor:
    out = torch.full((len(rows), length), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def make_batches(
    pairs: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    generator: torch.Generator | None = None,
) -> list[tuple[Tensor, Tensor]]:
    """(source (B, T_src), target (B, T_tgt)) batches, each side padded to its longest sentence.

    Pairs of similar source length go together (padding costs time, and the encoder reads it);
    with a generator, ties are broken and the batch order shuffled at random."""
    order = list(range(len(pairs)))
    if generator is not None:
        order = torch.randperm(len(pairs), generator=generator).tolist()
    order.sort(key=lambda i: len(pairs[i][0]))  # stable: random among equal lengths
    batches = []
    for s in range(0, len(order), batch_size):
        chunk = [pairs[i] for i in order[s : s + batch_size]]
        src, tgt = [p[0] for p in chunk], [p[1] for p in chunk]
        batches.append((_pad(src, max(map(len, src))), _pad(tgt, max(map(len, tgt)))))
    if generator is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


@dataclass
class TranslationConfig:
    """Defaults: the full-size runs of the README (about 10 minutes each on one CPU thread)."""

    model: str = "transformer"  # one of MODELS
    teacher_forcing: bool = False  # Seq2Seq only: train and score with the gold previous word
    model_type: str = "LSTM"  # Seq2Seq's recurrent layer: "RNN" or "LSTM"
    emb_size: int = 64  # Seq2Seq
    hidden_size: int = 128  # Seq2Seq (encoder = decoder: cosine attention compares them)
    dropout: float = 0.2  # Seq2Seq (the handout's default)
    hidden_dim: int = 128  # Transformer
    num_heads: int = 2
    dim_feedforward: int = 512
    dim_k: int = 64  # = dim_q = dim_v
    max_len: int = 20  # longest sentence kept, in tokens (no <sos>, <eos>): 93% of the pairs
    min_freq: int = 2
    train_limit: int | None = None  # the first pairs of train (after the max_len filter)
    dev_limit: int | None = None
    batch_size: int = 64
    epochs: int = 4
    lr: float = 3e-3  # Adam; better than 1e-3 for every model at this short budget
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.teacher_forcing and self.model == "transformer":
            raise ValueError(
                "teacher forcing is a Seq2Seq protocol; the Transformer reads the source"
            )

    @property
    def protocol(self) -> str:
        return "teacher-forcing" if self.teacher_forcing else "source"


def seed(value: int) -> None:
    """Seed torch's global RNG here and where the student's code runs (the model's initialisation
    and its dropout draw there). The boundary carries a change of this process's RNG state over
    before the next call, but not a re-seed to the state it sent last (the other process may have
    drawn since): seeding it there by name makes a run repeat whatever ran before it."""
    torch.manual_seed(value)
    build("torch.manual_seed", value)


def build_model(module: ModuleType, cfg: TranslationConfig, src_vocab: int, tgt_vocab: int):
    """The student's model: ``module`` is ``a2_seq2seq.seq2seq`` or ``a2_seq2seq.transformer``."""
    seed(cfg.seed)
    if cfg.model == "transformer":
        d = cfg.dim_k
        return module.TransformerTranslator(
            src_vocab,
            tgt_vocab,
            "cpu",
            hidden_dim=cfg.hidden_dim,
            num_heads=cfg.num_heads,
            dim_feedforward=cfg.dim_feedforward,
            dim_k=d,
            dim_v=d,
            dim_q=d,
            max_length=cfg.max_len + 2,
        )
    attention = cfg.model == "seq2seq-attn"
    H = cfg.hidden_size
    encoder = module.Encoder(src_vocab, cfg.emb_size, H, H, cfg.dropout, cfg.model_type)
    decoder = module.Decoder(cfg.emb_size, H, H, tgt_vocab, cfg.dropout, cfg.model_type, attention)
    return module.Seq2Seq(encoder, decoder, "cpu", attention)


def _protocol(cfg: TranslationConfig) -> dict:
    return {
        "transformer": cfg.model == "transformer",
        "teacher_forcing": cfg.teacher_forcing,
        "pad": PAD,
    }


def scores(model: nn.Module, cfg: TranslationConfig, source: Tensor, target: Tensor) -> Tensor:
    """(B, T_tgt - 1, V_tgt): what the model gives for target words 1 .. T_tgt - 1 under
    ``cfg.protocol`` (logits or log-probabilities: cross-entropy treats both alike). Teacher
    forcing hands the model the whole target at once: for training pairs only."""
    return translation_scores(model, source, target, **_protocol(cfg))


def heldout_scores(
    model: nn.Module, cfg: TranslationConfig, source: Tensor, target: Tensor
) -> Tensor:
    """What :func:`scores` gives, with no target word shown to the model before it is scored.

    Teacher-forced, the model is run once per target word t with the gold words 0 .. t and a
    blank (``<pad>``) after them, and only its last step is kept: the scores of word t + 1, which
    read words 0 .. t (a correct Seq2Seq never reads the blank). The other protocols are given
    the source alone."""
    if cfg.model == "transformer" or not cfg.teacher_forcing:
        return scores(model, cfg, source, target)
    B, T_tgt = target.shape
    blank = torch.full((B, 1), PAD, dtype=target.dtype)
    steps = []
    for t in range(T_tgt - 1):  # in order: words 0 .. t have all been scored already
        shown = torch.cat((target[:, : t + 1], blank), dim=1)  # (B, t + 2)
        steps.append(model(source, target=shown)[:, t])  # (B, V)
    return torch.stack(steps, dim=1)


def _nll(out: Tensor, target: Tensor, reduction: str) -> Tensor:
    """Cross-entropy of scores ``out`` (B, T_tgt - 1, V) against the words after <sos>."""
    gold = target[:, 1:]  # (B, T_tgt - 1)
    if out.dim() != 3 or out.shape[:2] != gold.shape:
        raise ValueError(
            f"the model gave scores of shape {tuple(out.shape)} for targets of shape "
            f"{tuple(target.shape)}: expected (B, T_tgt - 1, V_tgt) = ({gold.shape[0]}, "
            f"{gold.shape[1]}, V_tgt), one row of scores per target word after <sos>"
        )
    return F.cross_entropy(
        out.reshape(-1, out.shape[-1]), gold.reshape(-1), ignore_index=PAD, reduction=reduction
    )


@torch.no_grad()
def perplexity(model: nn.Module, cfg: TranslationConfig, batches) -> float:
    """exp(mean NLL) over every scored target word of ``batches`` (padding ignored), from the
    model's :func:`heldout_scores`."""
    model.eval()
    total, count = 0.0, 0
    for source, target in batches:
        out = heldout_scores(model, cfg, source, target).double()
        total += _nll(out, target, "sum").item()
        count += int((target[:, 1:] != PAD).sum())
    return math.exp(total / count)


def unigram_perplexity(train, dev, vocab_size: int) -> float:
    """The trivial baseline: target word frequencies of the training pairs (add-one smoothed),
    scored on the same words as the models (everything after ``<sos>``)."""
    counts = torch.ones(vocab_size, dtype=torch.float64)
    for _, tgt in train:
        counts += torch.bincount(torch.tensor(tgt[1:]), minlength=vocab_size)
    log_p = (counts / counts.sum()).log()
    words = torch.tensor([w for _, tgt in dev for w in tgt[1:]])
    return math.exp(-float(log_p[words].mean()))


@dataclass
class History:
    epoch_losses: list[float] = field(default_factory=list)
    dev_perplexities: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fit(
    model: nn.Module,
    cfg: TranslationConfig,
    train,
    dev_batches=None,
    *,
    progress: bool = False,
) -> History:
    """``cfg.epochs`` epochs of Adam on length-bucketed batches, gradient norms clipped.

    The model trains where it lives: its loss (``TranslationLoss``), its optimizer (clipping,
    then Adam) and each epoch's loop (``coursekit.builders.train_epoch``) run next to it, so that an epoch sends the
    batches and gets their losses back."""
    seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    optimizer = build(
        "coursekit.a2_seq2seq.builders.clipped_adam",
        model,
        lr=cfg.lr,
        max_grad_norm=cfg.max_grad_norm,
    )
    loss_of = build("coursekit.a2_seq2seq.builders.TranslationLoss", model, **_protocol(cfg))
    history, start = History(), time.monotonic()
    for epoch in range(cfg.epochs):
        batches = make_batches(train, cfg.batch_size, g)
        model.train()
        desc = f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}" if progress else None
        losses = build("coursekit.builders.train_epoch", loss_of, optimizer, batches, desc)
        total, n = sum(losses), len(losses)
        history.epoch_losses.append(total / n)
        if dev_batches is not None:
            history.dev_perplexities.append(perplexity(model, cfg, dev_batches))
            if progress:
                print(
                    f"  epoch {epoch + 1}: train loss {total / n:.3f}, dev perplexity "
                    f"{history.dev_perplexities[-1]:.2f}",
                    flush=True,
                )
    history.seconds = time.monotonic() - start
    return history


def run(
    module: ModuleType,
    cfg: TranslationConfig,
    *,
    progress: bool = False,
    every_epoch: bool = False,
    eval_split: str = "val",
) -> dict:
    """Build vocabularies from the training pairs, train the student's model, and measure
    perplexity on ``eval_split`` (Multi30k ``val``, the dev split; the graded runs score the
    held-out ``test_2016_flickr``) under ``cfg.protocol``, with the unigram baseline."""
    start = time.monotonic()
    train_tok = load_pairs("train", limit=cfg.train_limit, max_len=cfg.max_len)
    dev_tok = load_pairs(eval_split, limit=cfg.dev_limit, max_len=cfg.max_len)
    src_vocab = Vocab.build((s for s, _ in train_tok), cfg.min_freq)
    tgt_vocab = Vocab.build((t for _, t in train_tok), cfg.min_freq)
    train = [(src_vocab.encode(s), tgt_vocab.encode(t)) for s, t in train_tok]
    dev = [(src_vocab.encode(s), tgt_vocab.encode(t)) for s, t in dev_tok]
    dev_batches = make_batches(dev, 128)
    model = build_model(module, cfg, len(src_vocab), len(tgt_vocab))
    history = fit(model, cfg, train, dev_batches if every_epoch else None, progress=progress)
    final = history.dev_perplexities[-1] if history.dev_perplexities else None  # the last epoch's
    return {
        "model": cfg.model,
        "protocol": cfg.protocol,
        "perplexity": perplexity(model, cfg, dev_batches) if final is None else final,
        "unigram_perplexity": unigram_perplexity(train, dev, len(tgt_vocab)),
        "epoch_losses": history.epoch_losses,
        "dev_perplexities": history.dev_perplexities,
        "train_pairs": len(train),
        "dev_pairs": len(dev),
        "eval_split": eval_split,
        "vocab": {"de": len(src_vocab), "en": len(tgt_vocab)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": history.seconds,
        "seconds": time.monotonic() - start,
        "model_object": model,
        "vocabs": (src_vocab, tgt_vocab),
    }
