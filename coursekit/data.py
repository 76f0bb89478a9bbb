"""Where the course's data sets live, and how they get there.

One setting decides: the environment variable ``COURSEKIT_DATA_DIR``. Unset, it is the user cache
(``$XDG_CACHE_HOME/coursekit/data``, else ``~/.cache/coursekit/data``). A file that is missing
there is downloaded (with pooch) from its data set's canonical source when one is known (online
users), checked against its md5, and kept; offline, the error says which folder to fill and from
where. ``make data`` (``python -m coursekit.data``) fetches and checks every file ahead of time.

The grader resolves the folder in its own process and hands it to the grading processes, which
never download (``COURSEKIT_DATA_DOWNLOAD=0``): a missing file there is a *setup problem*,
reported as such with the command that fixes it, never as a mistake in a submission.

    path = data_file("tinyshakespeare", "input.txt")
    text = read_text("tinyshakespeare", "train.txt")  # a derived file: see below

Some files are *derived* from others of their data set (the public part of Tiny Shakespeare, the
held-out sample of IMDB's test split): :func:`read_text` reads one from the folder when it is
there (the Gradescope zip and ``make data`` write it) and otherwise cuts it from its sources in
memory, so a read-only folder holding the sources (the course machines', CI's) serves as well.

Layout of a data-set folder (the same as ``../shared/data`` on the course machines):
``<data dir>/<data set>/<file>``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.data import DOWNLOAD_ENV, ENV, FIX, SETUP_PROBLEM, SetupProblem, data_dir


@dataclass(frozen=True)
class Remote:
    """One file of a data set and where its canonical source keeps it."""

    url: str
    member: str | None = None  # the file's path inside an archive at ``url``
    gunzip: bool = False  # the download (or member) is gzip-compressed


@dataclass(frozen=True)
class Derived:
    """A file made from other files of its data set by a function of their paths, which returns
    the file's text: a part of a corpus, a seeded sample of a split. Deterministic: its md5 is
    listed like any other file's."""

    sources: tuple[str, ...]
    function: str  # "module:function", called with the sources' paths in that order


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # the canonical source, in words (shown in errors and the README)
    md5: dict[str, str] = field(default_factory=dict)
    remote: dict[str, Remote] = field(default_factory=dict)
    # "module:function" that writes every file of the data set into a folder, from the canonical
    # archive, for files that are derived rather than downloaded as they are (IMDB's JSON lines)
    builder: str | None = None
    derived: dict[str, Derived] = field(default_factory=dict)


_M30K = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "tinyshakespeare",
            "char-rnn's Tiny Shakespeare (public domain)",
            {
                "input.txt": "6fb458f1232090904fb40fe944165e91",
                "train.txt": "0ca30bf21085e76988caaa58bb2ea370",
            },
            {
                "input.txt": Remote(
                    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
                )
            },
            # The first 90%, what a handout holds: the last 10% is the char LM's held-out text.
            derived={
                "train.txt": Derived(("input.txt",), "coursekit.a1_lm_basics.charlm:training_part")
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
                "heldout_test.jsonl": "49fca04c4d78df7d7199420d968aea29",
            },
            builder="coursekit.a1_lm_basics.dan:build_imdb",
            # A seeded, balanced sample of the test split outside small_test: the reviews graded
            # figures are scored on (small_test is public: the students' own dev data).
            derived={
                "heldout_test.jsonl": Derived(
                    ("test.jsonl.gz", "small_test.jsonl"),
                    "coursekit.a1_lm_basics.dan:heldout_sample",
                )
            },
        ),
        Dataset("ptb", "the NLP course handout's own files (course material)"),
        Dataset("perplexity_passages", "the H1 handout's passages (course material)"),
    )
}


class DataNotFound(SetupProblem):
    """A data file is missing or damaged."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            problem,
            f"`{FIX}` fetches and checks every data file (online), or set {ENV} to a folder "
            "that holds the data sets.",
        )


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, processor=None):
    """Fetch ``url`` into ``<data dir>/.downloads/`` with pooch (retries, atomic writes; a file
    already there is not fetched again); returns its path, or what ``processor`` returns (the
    members an archive was unpacked into)."""
    import logging

    import pooch

    pooch.get_logger().setLevel(logging.WARNING)
    return pooch.retrieve(
        url,
        None,
        path=data_dir() / ".downloads",
        processor=processor,
        progressbar=sys.stderr.isatty(),
    )


def _fetch(remote: Remote, dest: Path) -> None:
    """``remote`` into ``dest``: an archive's member, a gzip-compressed file or the file itself
    (an archive's other members then need no second download)."""
    import pooch

    if remote.member is not None:
        unpack = pooch.Unzip if remote.url.endswith(".zip") else pooch.Untar
        source = Path(download(remote.url, unpack(members=[remote.member]))[0])
    elif remote.gunzip:
        source = Path(download(remote.url, pooch.Decompress("gzip")))
    else:
        source = Path(download(remote.url))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def _build(spec: Dataset, folder: Path, wanted: list[str] | tuple[str, ...]) -> None:
    """Write the ``wanted`` files of a data set made by its builder into ``folder``, and only
    them: the builder writes every file of the set (all of IMDB's splits) into a temporary
    folder, so a handout's folder gets the public files it asked for and no other split."""
    module, function = spec.builder.split(":")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
        getattr(importlib.import_module(module), function)(Path(tmp))
        for name in wanted:
            os.replace(Path(tmp) / name, folder / name)


def _source(spec: Dataset, filename: str, download: bool, tmp: Path) -> Path:
    """A source of a derived file: the data folder's copy, else a download kept only in ``tmp``
    (a handout's folder then holds the derived file alone), else one built into the folder."""
    path = data_dir() / spec.name / filename
    remote = spec.remote.get(filename)
    if path.exists() or not download or remote is None:
        return data_file(spec.name, filename, download=download)
    _fetch(remote, tmp / filename)
    for cached in (data_dir() / ".downloads").glob(f"*{Path(remote.url).name}"):
        cached.unlink()  # pooch's copy of the whole file: not kept either
    expected = spec.md5.get(filename)
    if expected and _md5(tmp / filename) != expected:
        raise DataNotFound(f"the download of {remote.url} does not have md5 {expected}.")
    return tmp / filename


def _derive(spec: Dataset, filename: str, download: bool) -> str:
    """The text of a derived file, made from its sources (in memory: no folder is written)."""
    derived = spec.derived[filename]
    with tempfile.TemporaryDirectory(prefix="coursekit-data-") as tmp:
        sources = [_source(spec, s, download, Path(tmp)) for s in derived.sources]
        module, function = derived.function.split(":")
        return getattr(importlib.import_module(module), function)(*sources)


def _derivable_here(dataset: str, filename: str) -> bool:
    """A derived file missing from the folder whose sources are all there: read_text makes it in
    memory, so nothing needs writing (the course machines' folder is read-only)."""
    spec = DATASETS[dataset]
    folder = data_dir() / dataset
    derived = spec.derived.get(filename)
    return (
        derived is not None
        and not (folder / filename).exists()
        and all((folder / s).exists() for s in derived.sources)
    )


def _may_download(download: bool) -> bool:
    return download and os.environ.get(DOWNLOAD_ENV, "1") != "0"


def data_file(dataset: str, filename: str, *, download: bool = True, verify: bool = False) -> Path:
    """The path of ``<data dir>/<dataset>/<filename>``, downloading it first if it is missing.

    Args:
        dataset, filename: as in the table of the README (e.g. ``"sst2"``, ``"dev.tsv"``).
        download: fetch a missing file from the canonical source (when one is known); a missing
            derived file is made from its sources and written into the folder.
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
        download = _may_download(download)
        fetchable = remote is not None or spec.builder is not None or filename in spec.derived
        if not download or not fetchable:
            how = (
                "it is downloaded before grading, never during it"
                if fetchable
                else f"it has no download (source: {spec.source}); place the file there"
            )
            raise DataNotFound(f"the data file {path} is missing ({how}).")
        try:
            if remote is not None:
                _fetch(remote, path)
            elif filename in spec.derived:
                text = _derive(spec, filename, download)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            else:
                _build(spec, path.parent, [filename])
        except (OSError, ValueError, EOFError) as exc:  # pooch: requests' errors are OSErrors
            where = remote.url if remote is not None else spec.source
            raise DataNotFound(
                f"the data file {path} is missing and fetching it from {where} failed "
                f"({type(exc).__name__}: {str(exc)[:160]})."
            ) from exc
        if not path.exists():
            raise DataNotFound(f"the data file {path} is missing: its builder did not write it.")
        verify = True
    expected = spec.md5.get(filename)
    if verify and expected and _md5(path) != expected:
        bad = path.with_name(path.name + ".bad")
        shutil.move(path, bad)
        raise DataNotFound(
            f"the data file {path} has md5 {_md5(bad)}, expected {expected}; moved aside to {bad}."
        )
    return path


# Derived files made from a folder that lacks them (a read-only one) are kept here, one folder per
# user, private to it, and used again only when their md5 is the published one: IMDB's held-out
# sample costs a decompression of the 25,000 test reviews (about 0.3 s idle, 1 s on a busy
# machine), once rather than in every graded run. A fixed path: grading children get a
# temporary TMPDIR and HOME of their own.
DERIVED_CACHE = Path("/tmp") / f"coursekit-derived-{os.getuid()}"


def _private_cache() -> Path | None:
    """The cache folder, made if need be; None unless it is this user's and private to it."""
    try:
        DERIVED_CACHE.mkdir(mode=0o700, exist_ok=True)
        st = DERIVED_CACHE.lstat()
    except OSError:
        return None
    mine = st.st_uid == os.getuid() and stat.S_ISDIR(st.st_mode)
    return DERIVED_CACHE if mine and not st.st_mode & 0o077 else None


def _derived_text(dataset: str, filename: str) -> str:
    """A derived file the data folder lacks: from the cache when it holds the published text,
    else made from the sources (and kept in the cache)."""
    spec = DATASETS[dataset]
    expected = spec.md5.get(filename)
    cache = _private_cache() if expected else None
    kept = cache / f"{dataset}-{filename}" if cache else None
    if kept is not None and kept.is_file() and _md5(kept) == expected:
        return kept.read_text(encoding="utf-8")
    text = _derive(spec, filename, download=False)
    if kept is not None and hashlib.md5(text.encode()).hexdigest() == expected:
        try:
            with tempfile.NamedTemporaryFile("w", dir=cache, delete=False, encoding="utf-8") as f:
                f.write(text)
            os.replace(f.name, kept)
        except OSError:
            pass  # a cache only
    return text


def read_text(dataset: str, filename: str) -> str:
    """The text of a data file: read from the folder, or — a derived file the folder lacks —
    made from its sources (see DERIVED_CACHE)."""
    if _derivable_here(dataset, filename):
        return _derived_text(dataset, filename)
    return data_file(dataset, filename).read_text(encoding="utf-8")


def materialize(item: str, dest: Path) -> Path:
    """Write ``"<data set>/<file>"`` to ``dest`` (a folder laid out like the data folder), for
    the Gradescope zip: a copy of the file, or a derived file made from its sources."""
    dataset, filename = item.split("/", 1)
    target = dest / dataset / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    if _derivable_here(dataset, filename):
        target.write_text(read_text(dataset, filename), encoding="utf-8")
    else:
        shutil.copyfile(data_file(dataset, filename), target)
    return target


def ensure(files: list[str] | tuple[str, ...]) -> list[str]:
    """Make sure each ``"<data set>/<file>"`` is present (downloading it if it can) or can be
    derived from files that are; returns the problems, one line each (empty when all are there)."""
    problems = []
    for item in files:
        dataset, filename = item.split("/", 1)
        if _derivable_here(dataset, filename):
            continue
        try:
            data_file(dataset, filename)
        except DataNotFound as exc:
            problems.append(exc.problem)
    return problems


def heldout_here(settings: Path, files: list[str] | tuple[str, ...]) -> bool:
    """Whether the graded tests beside ``settings`` (their ``tests/<assignment>/assignment.toml``)
    score these held-out files here: yes wherever its ``[data]`` lists them as ``heldout`` (the kit, the
    Gradescope zip: grading checks they are there before it starts, so a missing one is a setup
    problem), no in a handout, whose settings list public files alone (its tests then score
    public dev data, and say that Gradescope scores held-out data)."""
    import tomllib

    declared = set(tomllib.loads(settings.read_text()).get("data", {}).get("heldout", ()))
    if set(files) <= declared:
        return True
    if declared & set(files):
        raise ValueError(f"{settings} lists some of {files} as held out, not all")
    return False


def main(argv: list[str] | None = None) -> int:
    """``make data``: fetch what is missing and check the md5 of every file of every data set.

    Exit status 0 when every file is in place; 3 (a setup problem, as ``python -m grader``'s)
    when a file is missing or damaged and could not be fetched, with what fixes it; 1 when a
    derived file's text differs from the published one (its sources are there: the kit's code
    that makes it is at fault)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m coursekit.data", description=main.__doc__)
    p.add_argument(
        "datasets",
        nargs="*",
        metavar="DATASET[/FILE]",
        help=f"data sets or single files (default: all: {', '.join(DATASETS)})",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="also the files no graded test reads (e.g. WikiText-2's training split)",
    )
    args = p.parse_args(argv)
    unknown = {d.split("/", 1)[0] for d in args.datasets} - set(DATASETS)
    if unknown:
        p.error(f"unknown data sets {sorted(unknown)}; known: {', '.join(DATASETS)}")
    print(
        f"data folder: {data_dir()} ({ENV} {'set' if os.environ.get(ENV) else 'unset: the user cache'})"
    )
    failed = unfetched = 0
    items = []
    for name in args.datasets or DATASETS:
        spec = DATASETS[name.split("/", 1)[0]]
        every = sorted(set(spec.md5) | (set(spec.remote) if args.all else set()))
        items += [name.split("/", 1)] if "/" in name else [(name, f) for f in every]
    for name in dict.fromkeys(n for n, _ in items):  # one pass over an archive for all its files
        spec, folder = DATASETS[name], data_dir() / name
        built = [
            f for n, f in items if n == name and f not in spec.remote and f not in spec.derived
        ]
        missing = [f for f in built if not (folder / f).exists()]
        if spec.builder and len(missing) > 1 and _may_download(True):
            try:
                _build(spec, folder, missing)
            except (OSError, ValueError, EOFError):
                pass  # each file then says what failed
    for name, filename in items:
        spec = DATASETS[name]
        try:
            if _derivable_here(name, filename):  # made when read; the folder may be read-only
                text = read_text(name, filename)
                ok = hashlib.md5(text.encode()).hexdigest() == spec.md5.get(filename)
                state = (
                    "ok (derived when read, md5 checked)" if ok else "DERIVED TEXT DIFFERS (md5)"
                )
                failed += not ok
            else:
                data_file(name, filename, verify=True)
                state = "ok (md5 checked)" if filename in spec.md5 else "ok"
        except DataNotFound as exc:
            unfetched += 1
            state = "MISSING: " + exc.problem
        print(f"  {name}/{filename}: {state}")
    if failed:
        print(f"{failed} derived file(s) differ from the published text: a fault of the kit")
    if unfetched:
        print(
            f"Setup problem: {unfetched} data file(s) above are missing or damaged in {data_dir()} "
            "and could not be fetched. Fix: run this again (`make data`) where their sources "
            f"can be reached, or set {ENV} to a folder that holds the data sets (the course "
            "machines': ../shared/data); a file with no download is course material, to be "
            "placed there.",
            file=sys.stderr,
        )
    if not failed and not unfetched:
        print("every data file is in place")
    return SETUP_PROBLEM if unfetched else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
