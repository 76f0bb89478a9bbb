"""The autograder's setup.sh makes its venv with a Python the kit supports on both of Gradescope's
Ubuntu base images: 22.04 (jammy), whose archive has python3.11, and 24.04 (noble), whose archive
has python3.12 alone.

What each release offers comes from the Ubuntu archive itself (``data/ubuntu_python_packages.json``
says where and when; ``python -m grader.tests.test_setup_sh --refresh`` reads it again). The part of
setup.sh that chooses and installs the Python runs here in bash, against a fake ``apt-cache`` and
``apt-get`` that offer exactly one release's packages and a fake ``python3.N`` for each one installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from grader.commands import package
from grader.course import KIT_ROOT

FIXTURE = Path(__file__).parent / "data" / "ubuntu_python_packages.json"
RELEASES: dict[str, dict[str, list[str]]] = json.loads(FIXTURE.read_text())["releases"]
BASH = shutil.which("bash")


@pytest.fixture(scope="module")
def setup_sh(tmp_path_factory) -> str:
    """setup.sh as an autograder zip ships it."""
    archive = package.autograder("a1_lm_basics", tmp_path_factory.mktemp("zip"))
    with zipfile.ZipFile(archive) as zf:
        return zf.read("setup.sh").decode()


def python_part(script: str) -> str:
    """setup.sh from after its ``cd /autograder/source`` to the line that makes the venv: where
    it chooses, and if need be installs, the Python the venv is made with."""
    lines = script.splitlines()
    start = lines.index("cd /autograder/source") + 1
    made = [i for i, line in enumerate(lines) if "-m venv /autograder/venv" in line]
    assert made, "setup.sh makes no venv at /autograder/venv"
    return "\n".join(["set -euo pipefail", *lines[start : made[0] + 1]])


# The fakes write what happened into $STATE: the packages installed (one file each), apt-get's
# calls and the venv made. A python3.N imports ensurepip (and makes a venv) only once
# python3.N-venv is installed, as on Ubuntu. apt-cache prints what the real one prints for
# `apt-cache policy NAME`: nothing for a name the archive lacks (checked with the real one below).
FAKE_APT_CACHE = r"""#!BASH
PATH=$TOOLS  # the fake's own tools; setup.sh's PATH holds the fakes alone
[ "$1" = policy ] || exit 100
shift
for name in "$@"; do
  while read -r known version; do
    if [ "$known" = "$name" ]; then
      printf '%s:\n  Installed: (none)\n  Candidate: %s\n  Version table:\n' "$name" "$version"
    fi
  done < "$STATE/archive"
done
"""
FAKE_APT_GET = r"""#!BASH
PATH=$TOOLS  # the fake's own tools; setup.sh's PATH holds the fakes alone
echo "$*" >> "$STATE/apt-get.log"
[ "$1" = install ] || exit 0
shift
for name in "$@"; do
  case "$name" in -*) continue ;; esac
  grep -q "^$name " "$STATE/archive" || { echo "E: Unable to locate package $name" >&2; exit 100; }
done
for name in "$@"; do
  case "$name" in
    -*) ;;
    python3.*-venv) : > "$STATE/installed/$name" ;;
    python3.*) : > "$STATE/installed/$name"; ln -sf "$STATE/fake-python" "$FAKEBIN/$name" ;;
    *) : > "$STATE/installed/$name" ;;
  esac
done
"""
FAKE_PYTHON = r"""#!BASH
PATH=$TOOLS  # the fake's own tools; setup.sh's PATH holds the fakes alone
me=${0##*/}
case "$1" in
  --version) echo "Python ${me#python}.0" ;;
  -c) [ -e "$STATE/installed/$me-venv" ] ;;
  -m) [ -e "$STATE/installed/$me-venv" ] || { echo "ensurepip is not available" >&2; exit 1; }
      echo "$me" > "$STATE/venv" ;;
esac
"""


@dataclass
class Run:
    returncode: int
    stderr: str
    venv_made_by: str | None  # "python3.11", …
    installed: list[str]  # packages apt-get installed
    apt_calls: list[str]


def run_python_part(
    script: str,
    tmp: Path,
    archive: dict[str, list[str]],
    image: dict[str, bool],
    *,
    real_apt_cache: bool = False,
) -> Run:
    """Run setup.sh's Python part with ``archive`` (package -> versions) as the package archive
    and ``image`` (python3.N -> whether its venv module is installed) as the image's Pythons."""
    state, fakebin = tmp / "state", tmp / "bin"
    (state / "installed").mkdir(parents=True)
    fakebin.mkdir()
    (state / "archive").write_text("".join(f"{n} {v[0].split()[0]}\n" for n, v in archive.items()))
    fakes = {"apt-get": FAKE_APT_GET, "apt-cache": FAKE_APT_CACHE}
    if real_apt_cache:
        del fakes["apt-cache"]
        (fakebin / "apt-cache").symlink_to(shutil.which("apt-cache"))
    for name, text in [*fakes.items(), ("fake-python", FAKE_PYTHON)]:
        path = fakebin / name if name != "fake-python" else state / name
        path.write_text(text.replace("BASH", BASH))
        path.chmod(0o755)
    (fakebin / "grep").symlink_to(shutil.which("grep"))
    for python, with_venv in image.items():
        (fakebin / python).symlink_to(state / "fake-python")
        if with_venv:
            (state / "installed" / f"{python}-venv").touch()
    env = {
        "PATH": str(fakebin),
        "TOOLS": os.environ["PATH"],
        "STATE": str(state),
        "FAKEBIN": str(fakebin),
        "LC_ALL": "C",
    }
    done = subprocess.run(
        [BASH, "-c", python_part(script)], env=env, capture_output=True, text=True, timeout=60
    )
    log = state / "apt-get.log"
    calls = log.read_text().splitlines() if log.exists() else []
    installs = [c.split() for c in calls if c.startswith("install")]
    return Run(
        done.returncode,
        done.stderr,
        (state / "venv").read_text().strip() if (state / "venv").exists() else None,
        [n for c in installs for n in c[1:] if not n.startswith("-")],
        calls,
    )


def kit_pythons() -> SpecifierSet:
    return SpecifierSet(
        tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )


def offered(archive: dict[str, list[str]]) -> list[str]:
    """The python3.N of a release's archive that come with a python3.N-venv, by N."""
    names = [n for n in archive if re.fullmatch(r"python3\.\d+", n) and f"{n}-venv" in archive]
    return sorted(names, key=lambda n: int(n.split(".")[1]))


@pytest.mark.parametrize("release", sorted(RELEASES))
@pytest.mark.parametrize("image_python", ["none", "the release's own, without venv"])
def test_setup_sh_makes_its_venv_with_a_python_of_the_release_that_the_kit_supports(
    setup_sh, tmp_path, release, image_python
):
    """On a bare image, and on one with the release's own python3.N lacking its venv module (as
    Gradescope's images ship python3), setup.sh installs a python3.N and python3.N-venv the
    release's archive has, of a version pyproject.toml's requires-python admits, and makes the
    venv with it."""
    archive = RELEASES[release]
    supported = [n for n in offered(archive) if kit_pythons().contains(n.removeprefix("python"))]
    assert supported, (
        f"Ubuntu {release}'s archive has no Python the kit supports: {offered(archive)}"
    )
    image = {}
    if image_python != "none":
        own = "python" + ".".join(archive["python3"][0].split(".")[:2])  # "3.10.4-…" -> python3.10
        image = {own: False}
    run = run_python_part(setup_sh, tmp_path, archive, image)
    assert run.returncode == 0, f"setup.sh failed on Ubuntu {release}:\n{run.stderr}"
    assert run.venv_made_by in supported, (
        f"on Ubuntu {release} the venv is made with {run.venv_made_by}; the kit supports "
        f"{kit_pythons()} and the archive offers {supported}"
    )
    missing = [n for n in run.installed if n not in archive]
    assert not missing, f"setup.sh installs {missing}, which Ubuntu {release}'s archive lacks"
    assert {run.venv_made_by, f"{run.venv_made_by}-venv"} <= set(run.installed), run.apt_calls


def test_an_image_whose_python_has_its_venv_module_installs_nothing(setup_sh, tmp_path):
    """A Python the kit supports, already able to make a venv, is used as it is: no apt-get."""
    release = next(r for r in RELEASES if "python3.12" in RELEASES[r])
    run = run_python_part(setup_sh, tmp_path, RELEASES[release], {"python3.12": True})
    assert (run.returncode, run.venv_made_by, run.apt_calls) == (0, "python3.12", []), run.stderr


def test_an_image_with_no_supported_python_stops_with_a_message_that_says_what_to_choose(
    setup_sh, tmp_path
):
    """An archive with no Python the kit supports (say, an older Ubuntu with python3.8) stops
    setup.sh before any venv is made, naming the base images that work."""
    old = {"python3": ["3.8.2-0ubuntu2"], "python3.8": ["3.8.2-1"], "python3.8-venv": ["3.8.2-1"]}
    run = run_python_part(setup_sh, tmp_path, old, {"python3.8": True})
    assert run.returncode != 0 and run.venv_made_by is None
    assert "22.04" in run.stderr and "24.04" in run.stderr, run.stderr


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="no apt-cache on this machine")
def test_the_choice_reads_the_real_apt_cache(setup_sh, tmp_path):
    """The same part with this machine's own apt-cache (its package lists, e.g. Debian 12's
    python3.11-venv): what the fake prints is what the choice is read from."""
    policy = subprocess.run(
        ["apt-cache", "policy", "python3.11-venv", "python3.12-venv"],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    real = re.findall(
        r"^(python3\.\d+)-venv:\n  Installed: .*\n  Candidate: (\d\S*)$", policy.stdout, re.M
    )
    if not real:
        pytest.skip("this machine's package lists offer no python3.11-venv or python3.12-venv")
    archive = {
        n: [v] for name, version in real for n, v in ((name, version), (f"{name}-venv", version))
    }
    run = run_python_part(setup_sh, tmp_path, archive, {}, real_apt_cache=True)
    assert run.returncode == 0, run.stderr
    assert run.venv_made_by == real[0][0], (policy.stdout, run.apt_calls)


def test_setup_sh_installs_torch_from_the_cpu_index_with_the_kits_pins(setup_sh):
    """The venv's pip takes torch's CPU build (the default wheel pulls GBs of CUDA), and the pins."""
    pip = re.search(r"/autograder/venv/bin/pip install (.*?)(?<!\\)\n", setup_sh, re.S)
    assert pip, "setup.sh never runs the venv's pip install"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip.group(1), pip.group(1)
    assert "-c kit/constraints.txt" in pip.group(1), pip.group(1)


def refresh() -> None:
    """Read the releases' packages from the Ubuntu archive again and rewrite the fixture."""
    import datetime
    import gzip
    import urllib.request

    data = json.loads(FIXTURE.read_text())
    name = re.compile(r"python3(\.\d+)?(-venv)?")
    for release in data["releases"]:
        code, found = release.split()[1], {}
        for suite in (code, f"{code}-updates"):
            for component in ("main", "universe"):
                url = data["source"].format(suite=suite, component=component)
                with urllib.request.urlopen(url, timeout=60) as r:
                    text = gzip.decompress(r.read()).decode()
                for stanza in text.split("\n\n"):
                    fields = dict(re.findall(r"^(Package|Version): (.+)$", stanza, re.M))
                    if name.fullmatch(fields.get("Package", "")):
                        found.setdefault(fields["Package"], set()).add(
                            f"{fields['Version']} ({suite}/{component})"
                        )
        data["releases"][release] = {k: sorted(v) for k, v in sorted(found.items())}
    data["fetched"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    FIXTURE.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__" and sys.argv[1:] == ["--refresh"]:
    refresh()
