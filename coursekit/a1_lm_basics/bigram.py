"""Support for the word-level neural bigram LM of assignment 1 (H1.4): corpus, vocabulary, the
SGD loop and dev perplexity. Not graded: it calls the student's ``bigram_forward``,
``bigram_backward`` and ``sgd_step`` (``a1_lm_basics/bigram_lm.py``).

The handout trains on the PTB training split, which these machines do not have; the kit trains
on WikiText-2 (``wiki.valid.tokens`` here, any split online) and reports perplexity on
``wiki.test.tokens``. Words outside the ``vocab_size - 1`` most frequent become ``<unk>``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from types import ModuleType

import torch
from torch import Tensor

from coursekit.data import data_file
from grader.testprocess.deliverables import build

UNK, EOS = "<unk>", "<eos>"


def load_words(split: str = "valid", limit: int | None = None) -> list[str]:
    """The words of WikiText-2's ``wiki.<split>.tokens``, a line ending in ``<eos>``; empty lines
    skipped. ``limit`` keeps the first that many words (the graded tests use a slice)."""
    words: list[str] = []
    with open(data_file("wikitext2", f"wiki.{split}.tokens"), encoding="utf-8") as f:
        for line in f:
            tokens = line.split()
            if tokens:
                words.extend(tokens)
                words.append(EOS)
            if limit is not None and len(words) >= limit:
                return words[:limit]
    return words


@dataclass
class Vocab:
    """The ``size - 1`` most frequent words of a corpus plus ``<unk>`` (ties: first seen first)."""

    itos: list[str]
    stoi: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, words: Sequence[str], size: int) -> Vocab:
        common = [w for w, _ in Counter(w for w in words if w != UNK).most_common(size - 1)]
        return cls([UNK, *common])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words: Sequence[str]) -> Tensor:
        unk = self.stoi[UNK]
        return torch.tensor([self.stoi.get(w, unk) for w in words], dtype=torch.long)


def pairs(ids: Tensor) -> tuple[Tensor, Tensor]:
    """(previous word, next word) for every position: ``ids[:-1], ids[1:]``."""
    return ids[:-1], ids[1:]


@dataclass
class BigramConfig:
    vocab_size: int = 2000  # the handout's figures
    embed_dim: int = 50
    hidden: int = 50
    lr: float = 0.3
    iterations: int = 40_000
    batch_size: int = 50
    seed: int = 0


def train(
    lm: ModuleType,
    prev: Tensor,
    nxt: Tensor,
    cfg: BigramConfig,
    *,
    progress: bool = False,
    log_every: int = 1000,
) -> tuple[dict[str, Tensor], list[float]]:
    """SGD with the student's forward/backward/step on random mini-batches of (prev, nxt) pairs.

    Returns the parameters and the mean training loss of every ``log_every`` iterations.
    """
    from tqdm.auto import tqdm

    params = lm.init_params(cfg.vocab_size, cfg.embed_dim, cfg.hidden, seed=cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    losses, window = [], []
    for it in tqdm(range(cfg.iterations), disable=not progress, desc="bigram SGD", unit="it"):
        idx = torch.randint(len(prev), (cfg.batch_size,), generator=g)
        loss, cache = lm.bigram_forward(params, prev[idx], nxt[idx])
        lm.sgd_step(params, lm.bigram_backward(cache), cfg.lr)
        window.append(float(loss))
        if (it + 1) % log_every == 0:
            losses.append(sum(window) / len(window))
            window = []
    return params, losses


def train_from_options(
    lm: ModuleType, prev: Tensor, nxt: Tensor, options: dict, *, progress: bool = False
) -> tuple[dict[str, Tensor], list[float]]:
    """:func:`train` with the configuration as plain data: built where the student's code runs
    (``grader.testprocess.deliverables.build``), so the 3 × ``iterations`` calls of the loop stay in that
    process and only the training pairs go in and the parameters come out. The figure is
    computed from those parameters by :func:`perplexity`, on the caller's side."""
    return train(lm, prev, nxt, BigramConfig(**options), progress=progress)


def perplexity(params: dict[str, Tensor], prev: Tensor, nxt: Tensor) -> float:
    """Token-weighted perplexity of the pairs under the trained parameters: exp of the mean
    cross-entropy of softmax(σ(E[prev] W1 + b1) W2 + b2) over all of them. Computed here, from
    the parameters alone (the handout's network), so the figure cannot depend on anything else."""
    total, chunk = 0.0, 4096
    with torch.no_grad():
        for i in range(0, len(prev), chunk):
            p, n = prev[i : i + chunk], nxt[i : i + chunk]
            h = torch.sigmoid(params["E"][p] @ params["W1"] + params["b1"])
            logits = h @ params["W2"] + params["b2"]
            total += torch.nn.functional.cross_entropy(logits.double(), n, reduction="sum").item()
    return math.exp(total / len(prev))


def unigram_perplexity(train_ids: Tensor, eval_ids: Tensor, vocab_size: int) -> float:
    """The trivial baseline: word frequencies of the training text (add-one smoothed)."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1
    log_p = (counts / counts.sum()).log()
    return math.exp(-float(log_p[eval_ids].mean()))


def run(
    lm: ModuleType,
    cfg: BigramConfig,
    *,
    train_split: str = "valid",
    eval_split: str = "test",
    train_words: int | None = None,
    eval_words: int | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Build the vocabulary on the training words, train, and measure perplexities. With
    ``eval_split`` the training split, the words scored are the ``eval_words`` after the
    ``train_words`` trained on (a handout's stand-in for the held-out split)."""
    start = time.monotonic()
    words = load_words(train_split, train_words)
    vocab = Vocab.build(words, cfg.vocab_size)
    if eval_split == train_split:
        if train_words is None or eval_words is None:
            raise ValueError("scoring the training split needs train_words and eval_words")
        eval_text = load_words(train_split, train_words + eval_words)[train_words:]
    else:
        eval_text = load_words(eval_split, eval_words)
    train_ids, eval_ids = vocab.encode(words), vocab.encode(eval_text)
    params, losses = build(
        "coursekit.a1_lm_basics.bigram.train_from_options",
        lm,
        *pairs(train_ids),
        asdict(cfg),
        progress=progress,
    )
    return {
        "perplexity": perplexity(params, *pairs(eval_ids)),
        "unigram_perplexity": unigram_perplexity(train_ids, eval_ids[1:], len(vocab)),
        "final_train_loss": losses[-1] if losses else float("nan"),
        "train_words": len(train_ids),
        "eval_words": len(eval_ids),
        "seconds": time.monotonic() - start,
    }
