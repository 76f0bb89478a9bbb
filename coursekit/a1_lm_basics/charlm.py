"""Support for the character-level recurrent LM of assignment 1 (H1.6): Tiny Shakespeare, random
training windows, the epoch loop with a progress bar, the loss-per-epoch plot, and the handout's
perplexity passages. Not graded: it calls the student's ``CharRNN``, ``train_epoch`` and
``sample`` (``a1_lm_basics/char_rnn.py``).

The figures it reports are its own: held-out perplexity is computed here from the logits the
student's model gives on the held-out text (:func:`perplexity`), so that a graded run's figure
depends on the model alone, whatever process the model lives in.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from coursekit.data import data_file, read_text
from grader.testprocess.deliverables import build

HELDOUT_FRACTION = 0.1  # the last 10% of Tiny Shakespeare is held out


def load_text(limit: int | None = None) -> str:
    """The whole of Tiny Shakespeare (or its first ``limit`` characters): the full-size run's."""
    text = data_file("tinyshakespeare", "input.txt").read_text(encoding="utf-8")
    return text if limit is None else text[:limit]


def training_part(path: Path) -> str:
    """The text of ``tinyshakespeare/train.txt``: the first 90% of ``input.txt`` (at ``path``),
    what a handout holds; the last 10% is held out."""
    text = path.read_text(encoding="utf-8")
    return text[: int(len(text) * (1 - HELDOUT_FRACTION))]


def load_parts(heldout: bool) -> tuple[str, str]:
    """(training part, held-out part) of Tiny Shakespeare for the graded run. ``heldout``: the
    held-out part is the last 10% of ``input.txt`` (the trusted side's file); otherwise — in a
    handout, which holds ``train.txt`` alone — the training part is all there is, and the
    caller scores on a stretch of it that training never reads."""
    train = read_text("tinyshakespeare", "train.txt")
    if not heldout:
        return train, ""
    whole = data_file("tinyshakespeare", "input.txt").read_text(encoding="utf-8")
    if not whole.startswith(train):
        raise ValueError("tinyshakespeare/train.txt is not the beginning of input.txt")
    return train, whole[len(train) :]


@dataclass
class Chars:
    """The characters of a text, sorted: id i is ``chars[i]``. Unknown characters map to 0."""

    chars: str

    @classmethod
    def of(cls, text: str) -> Chars:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        return torch.tensor([index.get(c, 0) for c in text], dtype=torch.long)

    def decode(self, ids: Tensor) -> str:
        return "".join(self.chars[i] for i in ids.tolist())


def split(ids: Tensor, heldout: float = HELDOUT_FRACTION) -> tuple[Tensor, Tensor]:
    """The first (1 - heldout) of the text for training, the rest held out."""
    cut = int(len(ids) * (1 - heldout))
    return ids[:cut], ids[cut:]


def random_windows(
    ids: Tensor, n_batches: int, batch_size: int, seq_len: int, generator: torch.Generator
) -> list[Tensor]:
    """``n_batches`` batches of (batch_size, seq_len + 1) windows at random offsets."""
    starts = torch.randint(len(ids) - seq_len - 1, (n_batches, batch_size), generator=generator)
    offsets = torch.arange(seq_len + 1)
    return [ids[s.unsqueeze(1) + offsets] for s in starts]


def unigram_perplexity(train_ids: Tensor, eval_ids: Tensor, vocab_size: int) -> float:
    """The trivial baseline: character frequencies of the training text (add-one smoothed)."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1
    log_p = (counts / counts.sum()).log()
    return math.exp(-float(log_p[eval_ids[1:]].mean()))


@dataclass
class CharConfig:
    embed_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 2
    seq_len: int = 128
    batch_size: int = 32
    batches_per_epoch: int = 200
    epochs: int = 10
    lr: float = 3e-3  # Adam
    max_grad_norm: float = 1.0
    seed: int = 0


@dataclass
class CharHistory:
    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fit(
    rnn: ModuleType, model, train_ids: Tensor, cfg: CharConfig, *, progress: bool = False
) -> CharHistory:
    """``cfg.epochs`` epochs of the student's ``train_epoch`` on random windows (Adam).

    Returns the average loss of every epoch (what the handout plots)."""
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    optimizer = build("coursekit.builders.optimizer", model, "Adam", lr=cfg.lr)
    history, start = CharHistory(), time.monotonic()
    bar = tqdm(range(cfg.epochs), disable=not progress, desc="char LM", unit="epoch")
    for _ in bar:
        batches = random_windows(train_ids, cfg.batches_per_epoch, cfg.batch_size, cfg.seq_len, g)
        loss = rnn.train_epoch(model, batches, optimizer, cfg.max_grad_norm)
        history.epoch_losses.append(loss)
        bar.set_postfix(loss=f"{loss:.3f}")
    history.seconds = time.monotonic() - start
    return history


def perplexity(model, ids: Tensor, seq_len: int) -> float:
    """Token-weighted perplexity of ``model`` on ``ids``: windows ``ids[s : s + seq_len + 1]``
    for s = 0, seq_len, ...; every character but the first scored exactly once (the definition
    ``heldout_perplexity`` implements)."""
    nll, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(ids) - 1, seq_len):
            w = ids[s : s + seq_len + 1]
            logits = model(w[:-1].view(1, -1))[0][0]
            nll += torch.nn.functional.cross_entropy(logits.double(), w[1:], reduction="sum").item()
            count += len(w) - 1
    return math.exp(nll / count)


def plot_epoch_losses(losses: list[float], path: str | os.PathLike) -> Path:
    """Average training loss per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = range(1, len(losses) + 1)
    ax.plot(epochs, losses, "o-", label="training loss, mean over the epoch")
    ax.set_xlabel("epoch")
    ax.set_xticks(list(epochs))
    ax.set_ylabel("cross-entropy (nats / character)")
    ax.set_title("character LM on Tiny Shakespeare")
    ax.legend(loc="upper right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run(
    rnn: ModuleType,
    cfg: CharConfig,
    *,
    text_limit: int | None = None,
    heldout_limit: int | None = None,
    parts: tuple[str, str] | None = None,
    progress: bool = False,
    plot: str | os.PathLike | None = None,
    passages: bool = False,
    sample_chars: int = 0,
) -> dict:
    """Train on the first 90% of Tiny Shakespeare (or of its first ``text_limit`` characters)
    and measure held-out perplexity (on at most ``heldout_limit`` held-out characters).
    ``parts``: (training text, held-out text) given by the caller instead (the graded run's;
    the vocabulary is the characters of both, as it is of the whole text otherwise)."""
    start = time.monotonic()
    if parts is None:
        text = load_text(text_limit)
        chars = Chars.of(text)
        train_ids, held = split(chars.encode(text))
    else:
        chars = Chars.of(parts[0] + parts[1])
        train_ids, held = chars.encode(parts[0]), chars.encode(parts[1])
    held = held if heldout_limit is None else held[:heldout_limit]
    torch.manual_seed(cfg.seed)
    model = rnn.CharRNN(len(chars), cfg.embed_dim, cfg.hidden_size, cfg.num_layers)
    history = fit(rnn, model, train_ids, cfg, progress=progress)
    result = {
        "perplexity": perplexity(model, held, cfg.seq_len),
        "unigram_perplexity": unigram_perplexity(train_ids, held, len(chars)),
        "epoch_losses": history.epoch_losses,
        "train_chars": len(train_ids),
        "heldout_chars": len(held),
        "train_seconds": history.seconds,
    }
    if plot is not None:
        result["plot"] = str(plot_epoch_losses(history.epoch_losses, plot))
    if passages:  # the H1 handout's passages (its char model: about 7.5 and 20)
        for name in ("shakespeare", "wikipedia"):
            passage = data_file("perplexity_passages", f"{name}_for_perplexity.txt").read_text()
            known = "".join(c for c in passage if c in chars.chars)  # Shakespeare's characters
            result[f"{name}_passage_unknown_chars"] = len(passage) - len(known)
            ids = chars.encode(known)
            result[f"{name}_passage_perplexity"] = perplexity(model, ids, cfg.seq_len)
    if sample_chars:
        g = torch.Generator().manual_seed(cfg.seed)
        prompt = chars.encode("ROMEO:\n")
        for t in (0.5, 1.0):
            ids = rnn.sample(model, prompt, sample_chars, temperature=t, generator=g)
            result[f"sample_t{t}"] = chars.decode(ids)
    result["seconds"] = time.monotonic() - start
    return result
