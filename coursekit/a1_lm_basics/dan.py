"""Support for the Deep Averaging Network of assignment 1 (H1.7): IMDB reviews, tokenisation,
vocabulary, padded batches, the training loop and accuracy. Not graded: it trains the student's
``DAN`` (``a1_lm_basics/dan.py``).

IMDB comes as JSON lines (id, rating, label, text) in ``<data dir>/imdb/``: ``train`` (20,000) and
``val`` (5,000) — together the original 25,000 training reviews — ``test`` (25,000), and the
balanced subsets ``small_train`` (2,000) and ``small_test`` (1,000). Online, a missing folder is
built from the canonical archive (aclImdb, Maas et al. 2011) by :func:`build_imdb`, with the same
seeded splits. ``heldout_test`` (1,000) is derived from ``test``: a seeded, balanced sample of the
reviews outside ``small_test`` (:func:`heldout_sample`), what the graded figures are scored on;
``small_test`` is public, the students' own dev data.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import tarfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from coursekit.data import data_file, download, read_text
from grader.testprocess.deliverables import build

ACL_IMDB = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SPLITS = {  # split -> file name
    "train": "train.jsonl.gz",
    "val": "val.jsonl.gz",
    "test": "test.jsonl.gz",
    "small_train": "small_train.jsonl",
    "small_test": "small_test.jsonl",
    "heldout_test": "heldout_test.jsonl",  # derived from test (see heldout_sample)
}
# The held-out sample: HELDOUT_PER_LABEL reviews of each label, drawn with HELDOUT_SEED from the
# test reviews outside small_test. 1,000 in all: as many as small_test, which the DAN's graded
# run scored before (so its time is unchanged), and a standard error of about 1.3 points on an
# accuracy near 0.8; the IMDB artifact check scores the first 400 (200 of each label).
HELDOUT_PER_LABEL = 500
HELDOUT_SEED = 0
PAD, UNK = "<pad>", "<unk>"
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_imdb(split: str) -> tuple[list[str], list[int]]:
    """Texts and labels (0 negative, 1 positive) of one split (see :data:`SPLITS`)."""
    if split == "heldout_test":  # derived: made from test when the folder lacks it
        text = read_text("imdb", SPLITS[split])  # split on "\n" alone: reviews hold U+2028
        rows = [json.loads(line) for line in text.split("\n") if line.strip()]
    else:
        rows = _read_jsonl(data_file("imdb", SPLITS[split]))  # built from aclImdb when missing
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def heldout_sample(
    test: Path, small_test: Path, per_label: int = HELDOUT_PER_LABEL, seed: int = HELDOUT_SEED
) -> str:
    """The lines of ``heldout_test.jsonl``: ``per_label`` reviews of each label of the test split
    (``test``), none of ``small_test``, taken in an order shuffled with ``seed``, then interleaved
    positive, negative, ... (every even-sized prefix is balanced). Only the lines taken are
    parsed: the 25,000 lines cost a decompression, not 25,000 JSON parses."""
    public = {(r["id"], int(r["label"])) for r in _read_jsonl(small_test)}
    with gzip.open(test, "rb") as f:
        lines = [line for line in f.read().decode("utf-8").split("\n") if line.strip()]
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    taken: dict[int, list[str]] = {0: [], 1: []}
    for i in order:
        row = json.loads(lines[i])
        label = int(row["label"])
        if (row["id"], label) not in public and len(taken[label]) < per_label:
            taken[label].append(lines[i])
            if all(len(rows) == per_label for rows in taken.values()):
                break
    if any(len(rows) < per_label for rows in taken.values()):
        raise ValueError(f"{test}: fewer than {per_label} reviews of a label outside small_test")
    return "".join(f"{p}\n{n}\n" for p, n in zip(taken[1], taken[0], strict=True))


def build_imdb(dest: Path, url: str = ACL_IMDB, seed: int = 0) -> None:
    """Write the five JSON-lines files from the aclImdb archive at ``url`` (http or https)."""
    reviews: dict[str, list[dict]] = {"train": [], "test": []}
    name = re.compile(r"aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
    with tarfile.open(download(url)) as archive:  # kept in <data dir>/.downloads
        for member in archive:
            m = name.search(member.name)
            if m is None or not member.isfile():
                continue
            text = archive.extractfile(member).read().decode("utf-8")
            split, polarity, rid, rating = m.groups()
            row = {
                "id": int(rid),
                "rating": int(rating),
                "label": int(polarity == "pos"),
                "text": text.replace("<br />", " "),
            }
            reviews[split].append(row)
    rng = random.Random(seed)
    for rows in reviews.values():
        rows.sort(key=lambda r: (r["label"], r["id"]))
        rng.shuffle(rows)
    n_val = len(reviews["train"]) // 5
    parts = {
        "train": reviews["train"][n_val:],
        "val": reviews["train"][:n_val],
        "test": reviews["test"],
        "small_train": _balanced(reviews["train"][n_val:], 2000),
        "small_test": _balanced(reviews["test"], 1000),
    }
    dest.mkdir(parents=True, exist_ok=True)
    for split, rows in parts.items():
        lines = "".join(json.dumps(r) + "\n" for r in rows)
        path = dest / SPLITS[split]
        if path.suffix == ".gz":
            with gzip.open(path, "wt", encoding="utf-8") as f:
                f.write(lines)
        else:
            path.write_text(lines, encoding="utf-8")


def _balanced(rows: list[dict], n: int) -> list[dict]:
    pos = [r for r in rows if r["label"] == 1][: n // 2]
    neg = [r for r in rows if r["label"] == 0][: n - n // 2]
    return [r for pair in zip(pos, neg, strict=False) for r in pair]


def tokenize(text: str) -> list[str]:
    """Lower-cased words and numbers (with an apostrophe suffix: "don't"); HTML breaks removed."""
    return WORD.findall(text.replace("<br />", " ").lower())


@dataclass
class Vocab:
    itos: list[str]

    def __post_init__(self) -> None:
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: Sequence[list[str]], size: int, min_count: int = 2) -> Vocab:
        counts = Counter(w for words in texts for w in words)
        common = [w for w, c in counts.most_common(size - 2) if c >= min_count]
        return cls([PAD, UNK, *common])

    @property
    def pad_id(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words: list[str], max_len: int) -> list[int]:
        unk = self.stoi[UNK]
        return [self.stoi.get(w, unk) for w in words[:max_len]] or [unk]


def pad(rows: Sequence[list[int]], pad_id: int = 0) -> Tensor:
    """(B, T) int64, each row padded with ``pad_id`` to the longest."""
    T = max(len(r) for r in rows)
    return torch.tensor([r + [pad_id] * (T - len(r)) for r in rows], dtype=torch.long)


@dataclass
class DanConfig:
    vocab_size: int = 30_000
    max_len: int = 400  # tokens kept of each review (its beginning)
    embed_dim: int = 100
    hidden_size: int = 100
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3  # Adam
    seed: int = 0


def predict(model, ids: list[list[int]], batch_size: int = 256) -> list[int]:
    model.eval()
    out: list[int] = []
    with torch.no_grad():
        for i in range(0, len(ids), batch_size):
            out += model(pad(ids[i : i + batch_size])).argmax(dim=-1).tolist()
    return out


def accuracy(preds: Sequence[int], labels: Sequence[int]) -> float:
    return sum(int(p == y) for p, y in zip(preds, labels, strict=True)) / len(labels)


def run(dan, cfg: DanConfig, *, train: str, evaluate: Sequence[str], progress: bool = False):
    """Train the student's DAN on split ``train`` (Adam, cross-entropy, shuffled batches) and
    report accuracy, and the majority-class baseline, on each split of ``evaluate``."""
    from tqdm.auto import tqdm

    start = time.monotonic()
    texts, labels = load_imdb(train)
    words = [tokenize(t) for t in texts]
    vocab = Vocab.build(words, cfg.vocab_size)
    ids = [vocab.encode(w, cfg.max_len) for w in words]
    torch.manual_seed(cfg.seed)
    model = dan.DAN(len(vocab), cfg.embed_dim, cfg.hidden_size, 2, pad_id=vocab.pad_id)
    optimizer = build("coursekit.builders.optimizer", model, "Adam", lr=cfg.lr)
    loss_of = build("coursekit.builders.ClassifierLoss", model)  # trains where the model lives
    g = torch.Generator().manual_seed(cfg.seed)
    losses = []
    for _ in tqdm(range(cfg.epochs), disable=not progress, desc="DAN", unit="epoch"):
        model.train()
        order = torch.randperm(len(ids), generator=g).tolist()
        batches = [
            (pad([ids[j] for j in batch]), torch.tensor([labels[j] for j in batch]))
            for batch in (
                order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)
            )
        ]
        batch_losses = build("coursekit.builders.train_epoch", loss_of, optimizer, batches)
        sizes = [len(y) for _, y in batches]
        losses.append(sum(x * n for x, n in zip(batch_losses, sizes, strict=True)) / len(ids))
    result = {"epoch_losses": losses, "train_reviews": len(ids), "vocab": len(vocab)}
    for split in evaluate:
        eval_texts, eval_labels = load_imdb(split)
        eval_ids = [vocab.encode(tokenize(t), cfg.max_len) for t in eval_texts]
        result[f"{split}_accuracy"] = accuracy(predict(model, eval_ids), eval_labels)
        result[f"{split}_majority"] = max(
            sum(eval_labels), len(eval_labels) - sum(eval_labels)
        ) / len(eval_labels)
    result["seconds"] = time.monotonic() - start
    return result
