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
