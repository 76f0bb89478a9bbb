"""Where the course's data sets live, and how they get there.

One setting decides: the environment variable ``COURSEKIT_DATA_DIR``. Unset, it is the user cache
(``$XDG_CACHE_HOME/coursekit/data``, else ``~/.cache/coursekit/data``). A file that is missing
there is downloaded from its data set's canonical source when one is known (online users), checked
against its md5, and kept; offline, the error says which folder to fill and from where.

    path = data_file("tinyshakespeare", "input.txt")

Layout of a data-set folder (the same as ``../shared/data`` on the course machines):
``<data dir>/<data set>/<file>``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ENV = "COURSEKIT_DATA_DIR"


def data_dir() -> Path:
    """The data folder: ``$COURSEKIT_DATA_DIR``, else the user cache."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "coursekit" / "data"


@dataclass(frozen=True)
class Remote:
    """One file of a data set and where its canonical source keeps it."""

    url: str
    member: str | None = None  # the file's path inside an archive at ``url``
    gunzip: bool = False  # the download (or member) is gzip-compressed


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # the canonical source, in words (shown in errors and the README)
    md5: dict[str, str] = field(default_factory=dict)
    remote: dict[str, Remote] = field(default_factory=dict)


_M30K = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "tinyshakespeare",
            "char-rnn's Tiny Shakespeare (public domain)",
            {"input.txt": "6fb458f1232090904fb40fe944165e91"},
            {
                "input.txt": Remote(
                    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
                )
            },
        ),
        Dataset(
            "sst2",
            "GLUE SST-2 (its public test split is unlabelled; the labelled test.tsv is course material)",
            {
                "train.tsv": "da409a0a939379ed32a470bc0f7fe99a",
                "dev.tsv": "268856b487b2a31a28c0a93daaff7288",
                "test.tsv": "b61d59d9ecc3898ef5a68ae53a40ded0",
            },
            {
                f: Remote("https://dl.fbaipublicfiles.com/glue/data/SST-2.zip", f"SST-2/{f}")
                for f in ("train.tsv", "dev.tsv")
            },
        ),
        Dataset(
            "multi30k",
            "Multi30k task 1 (non-commercial research and education)",
            {
                "train.de": "d3b4bc1671cfb805267f97f16884beba",
                "train.en": "053a34ece7c904dbc8c7361799afbe4c",
                "val.de": "9f139b15d9d11936dea7af2904e57d8c",
                "val.en": "2234730e7925354b766681b029b347ec",
                "test_2016_flickr.de": "cde61d7401b116652ee84099c7858ca3",
                "test_2016_flickr.en": "2022a6c31e2418047a0511333d55ed42",
            },
            {
                f"{split}.{lang}": Remote(f"{_M30K}{split}.{lang}.gz", gunzip=True)
                for split in ("train", "val", "test_2016_flickr")
                for lang in ("de", "en")
            },
        ),
        Dataset(
            "wikitext2",
            "WikiText-2 v1, tokenized (CC BY-SA)",
            {
                "wiki.valid.tokens": "3fd6f9107154d84bf744123b51c93902",
                "wiki.test.tokens": "aa994423907b6caec0751360108be745",
            },
            {
                f: Remote(
                    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
                    f"wikitext-2/{f}",
                )
                for f in ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")
            },
        ),
        Dataset(
            "imdb",
            "aclImdb (Maas et al. 2011), as JSON lines: id, rating, label, text",
            {
                "small_train.jsonl": "b44959d14a11b2971ed49c5ebe236caf",
                "small_test.jsonl": "d29a3db61101499356d441c639409208",
            },
        ),
        Dataset("ptb", "the NLP course handout's own files (course material)"),
        Dataset("perplexity_passages", "the H1 handout's passages (course material)"),
    )
}


class DataNotFound(FileNotFoundError):
    pass


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(remote: Remote, dest: Path) -> None:
    with urllib.request.urlopen(remote.url, timeout=60) as response:  # noqa: S310 - canonical URLs
        payload = response.read()
    if remote.member is not None:
        if remote.url.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                payload = archive.read(remote.member)
        else:
            with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
                member = archive.extractfile(remote.member)
                if member is None:
                    raise DataNotFound(f"{remote.member} is not a file in {remote.url}")
                payload = member.read()
    if remote.gunzip:
        payload = gzip.decompress(payload)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(payload)
    os.replace(tmp, dest)


def data_file(dataset: str, filename: str, *, download: bool = True, verify: bool = False) -> Path:
    """The path of ``<data dir>/<dataset>/<filename>``, downloading it first if it is missing.

    Args:
        dataset, filename: as in the table of the README (e.g. ``"sst2"``, ``"dev.tsv"``).
        download: fetch a missing file from the canonical source (when one is known).
        verify: check the md5 of an existing file too (downloads are always checked).
    Raises:
        DataNotFound: the file is missing and cannot be fetched; the message says what to do.
    """
    spec = DATASETS.get(dataset)
    if spec is None:
        raise KeyError(f"unknown data set {dataset!r}; known: {', '.join(sorted(DATASETS))}")
    path = data_dir() / dataset / filename
    if not path.exists():
        remote = spec.remote.get(filename)
        if not download or remote is None:
            raise DataNotFound(
                f"{path} is missing. Set {ENV} to the folder that holds '{dataset}/' (the course "
                f"machines keep it in shared/data), or place the file there. Source: {spec.source}."
            )
        try:
            _fetch(remote, path)
        except OSError as exc:
            raise DataNotFound(
                f"{path} is missing and downloading it from {remote.url} failed ({exc}). "
                f"Offline? Set {ENV} to a folder that already holds '{dataset}/'."
            ) from exc
        verify = True
    expected = spec.md5.get(filename)
    if verify and expected and _md5(path) != expected:
        bad = path.with_name(path.name + ".bad")
        shutil.move(path, bad)
        raise DataNotFound(f"{path} has md5 {_md5(bad)}, expected {expected}; moved aside to {bad}")
    return path
