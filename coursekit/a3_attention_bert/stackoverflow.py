"""The Stack Overflow 16k tag data set (handout H5): where it lives and how to fetch it.

Canonical source: the archive published with TensorFlow's text-classification tutorial. It is
not reachable from the course machines, so the kit's tests write small files in the same layout;
online, :func:`data_root` downloads and unpacks it into the data dir once.
"""

from __future__ import annotations

import tarfile
import urllib.request
from pathlib import Path

from coursekit.data import DataNotFound, data_dir

URL = "https://storage.googleapis.com/download.tensorflow.org/data/stack_overflow_16k.tar.gz"


def data_root(download: bool = True) -> Path:
    """``<data dir>/stackoverflow`` holding ``train/<tag>/*.txt`` and ``test/<tag>/*.txt``."""
    root = data_dir() / "stackoverflow"
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root
    if not download:
        raise DataNotFound(f"{root} has no train/ and test/ folders; source: {URL}")
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "stack_overflow_16k.tar.gz"
    try:
        urllib.request.urlretrieve(URL, archive)  # noqa: S310 - the canonical source
    except OSError as exc:
        raise DataNotFound(
            f"downloading {URL} failed ({exc}); place its contents in {root}"
        ) from exc
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    archive.unlink()
    return root


def tokenized(splits, tokenizer, max_length: int = 64):
    """The splits of ``load_stackoverflow`` (a ``DatasetDict``, or a dict of ``Dataset``s)
    tokenised for training: ``input_ids`` and ``attention_mask`` padded and truncated to
    ``max_length``, ``label`` kept, ``text`` removed."""
    from datasets import DatasetDict

    def encode(batch):
        return tokenizer(
            batch["text"], truncation=True, padding="max_length", max_length=max_length
        )

    return DatasetDict(splits).map(encode, batched=True, remove_columns=["text"])


def write_archive(root, snippets: dict[str, str], sizes: dict[str, int]) -> None:
    """Small questions in the canonical archive's layout under ``root``, for the tests and the
    benchmark: ``sizes[split]`` files ``<split>/<tag>/<i>.txt`` per tag of ``snippets``, each
    ``question i in <split>: <the tag's snippet>``. Created out of name order (1, 2, …, 0), so a
    folder listing is not sorted on file systems that list by creation time, either way round."""
    for split, n in sizes.items():
        for tag, snippet in snippets.items():
            folder = Path(root) / split / tag
            folder.mkdir(parents=True)
            for i in [*range(1, n), 0]:
                (folder / f"{i}.txt").write_text(f"question {i} in {split}: {snippet}")


def fixed_splits(root, tags, every: int = 4):
    """The split the Trainer test trains on, the same for every submission: the archive's layout
    under ``root`` read in file-name order, each tag's ``train`` files at positions 0, every,
    2·every, … held out as ``validation`` (stratified by construction), ``test`` as written.
    A ``DatasetDict`` like ``load_stackoverflow``'s: ``text`` and a ``ClassLabel`` ``label``
    whose names are ``tags`` (in that order)."""
    from datasets import ClassLabel, Dataset, DatasetDict

    tags = list(tags)
    rows: dict[str, dict[str, list]] = {
        s: {"text": [], "label": []} for s in ("train", "validation", "test")
    }
    for split in ("train", "test"):
        for label, tag in enumerate(tags):
            for i, path in enumerate(sorted((Path(root) / split / tag).glob("*.txt"))):
                to = "validation" if split == "train" and i % every == 0 else split
                rows[to]["text"].append(path.read_text(encoding="utf-8"))
                rows[to]["label"].append(label)
    feature = ClassLabel(names=list(tags))
    return DatasetDict(
        {s: Dataset.from_dict(r).cast_column("label", feature) for s, r in rows.items()}
    )
