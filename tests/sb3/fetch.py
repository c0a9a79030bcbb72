"""Fetch Stable-Baselines3's own test files for the installed SB3 version.

SB3's sdist on PyPI ships its ``tests/`` folder (the wheel does not). This script downloads the sdist of the
installed version with pip (which checks the file against the index's hash), and keeps its ``tests/*.py`` and
``pyproject.toml`` (whose pytest warning filters the adapter applies) in a git-ignored cache:

    .sb3-tests/<version>/tests/test_sde.py, ..., .sb3-tests/<version>/pyproject.toml

A folder already there is reused: the download happens once per SB3 version. Usage::

    python tests/sb3/fetch.py            # prints the folder
    python tests/sb3/fetch.py --version 2.9.2
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".sb3-tests"
COMPLETE = ".complete"  # written last: a folder without it is an interrupted fetch


def installed_version() -> str:
    """The version of the installed ``stable_baselines3`` distribution."""
    return importlib.metadata.version("stable_baselines3")


def tests_folder(version: str | None = None, cache: Path = CACHE) -> Path:
    """Where the SB3 files of ``version`` (None: the installed one) are kept."""
    return cache / (version or installed_version())


def _wanted(name: str) -> PurePosixPath | None:
    """The path inside the version folder for an sdist member we keep (``tests/*.py``, ``pyproject.toml``), else
    None. Members are ``<top folder>/<path>``; anything with ``..`` or an absolute path is refused."""
    parts = PurePosixPath(name).parts[1:]
    if not parts or ".." in parts or PurePosixPath(name).is_absolute():
        return None
    rel = PurePosixPath(*parts)
    if rel == PurePosixPath("pyproject.toml"):
        return rel
    if len(parts) == 2 and parts[0] == "tests" and rel.suffix == ".py":
        return rel
    return None


def fetch(version: str | None = None, cache: Path = CACHE) -> Path:
    """Download SB3's sdist for ``version`` (None: the installed one) and keep its tests; return the folder.

    :param version: An SB3 version on PyPI; None for the installed one.
    :param cache: The cache folder (one sub-folder per version).
    :return: The version's folder, holding ``tests/`` and ``pyproject.toml``.
    """
    dest = tests_folder(version, cache)
    if (dest / COMPLETE).exists():
        return dest
    version = dest.name
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        download = Path(tmp) / "download"
        # --no-binary :all: asks for the sdist (the wheel has no tests); --no-deps: SB3 is installed already.
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        command += ["--dest", str(download), f"stable-baselines3=={version}"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not download the sdist of stable-baselines3=={version} (is it a release on PyPI?):\n"
                f"{result.stderr.strip()}"
            )
        (sdist,) = download.glob("*.tar.gz")
        staging = Path(tmp) / version
        kept = 0
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                rel = _wanted(member.name)
                source = tar.extractfile(member) if member.isfile() and rel is not None else None
                if rel is None or source is None:
                    continue
                target = staging.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read())
                kept += 1
        if not (staging / "tests").is_dir():
            raise RuntimeError(f"{sdist.name} has no tests/ folder: nothing to run")
        (staging / COMPLETE).write_text(f"{sdist.name}: {kept} files\n")
        if dest.exists():  # an interrupted fetch
            shutil.rmtree(dest)
        try:
            staging.rename(dest)  # in one step: a concurrent run sees the whole folder or none
        except OSError:
            if not (dest / COMPLETE).exists():  # not a concurrent fetch that finished first
                raise
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", help="an SB3 release (default: the installed version)")
    args = parser.parse_args(argv)
    print(fetch(args.version))


if __name__ == "__main__":
    main()
