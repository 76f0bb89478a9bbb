"""The data-dir setting: read in place, download when missing, say what to do offline."""

import hashlib

import pytest

from coursekit import data


def test_reads_from_the_configured_folder(tmp_path, monkeypatch):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "vocab.ptb.txt").write_text("the 10 0.1\n")
    monkeypatch.setenv(data.ENV, str(tmp_path))
    assert data.data_file("ptb", "vocab.ptb.txt") == tmp_path / "ptb" / "vocab.ptb.txt"


def test_default_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(data.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.data_dir() == tmp_path / "coursekit" / "data"


def test_missing_file_downloads_from_the_canonical_source(tmp_path, monkeypatch):
    source = tmp_path / "upstream.txt"
    source.write_text("First Citizen:\n")
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    fake = data.Dataset(
        "shakes", "test", {"input.txt": digest}, {"input.txt": data.Remote(source.as_uri())}
    )
    monkeypatch.setitem(data.DATASETS, "shakes", fake)
    monkeypatch.setenv(data.ENV, str(tmp_path / "cache"))
    path = data.data_file("shakes", "input.txt")
    assert path.read_text() == "First Citizen:\n"


def test_a_corrupt_download_is_refused(tmp_path, monkeypatch):
    source = tmp_path / "upstream.txt"
    source.write_text("tampered\n")
    fake = data.Dataset(
        "shakes", "test", {"input.txt": "0" * 32}, {"input.txt": data.Remote(source.as_uri())}
    )
    monkeypatch.setitem(data.DATASETS, "shakes", fake)
    monkeypatch.setenv(data.ENV, str(tmp_path / "cache"))
    with pytest.raises(data.DataNotFound, match="md5"):
        data.data_file("shakes", "input.txt")


def test_offline_error_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV, str(tmp_path))
    with pytest.raises(data.DataNotFound, match=data.ENV):
        data.data_file("ptb", "ptb-dev.txt")


def test_shared_data_matches_the_published_checksums():
    """Where the course machines' data dir is configured, every listed file is intact."""
    for name, spec in data.DATASETS.items():
        for filename in spec.md5:
            try:
                data.data_file(name, filename, download=False, verify=True)
            except data.DataNotFound as exc:
                if "md5" in str(exc):
                    raise
