"""Every code snippet of the README and the documentation runs (Sybil), and the site's pages say what they must.

One test per page: its ```python blocks run in order in one namespace, and its ```bash / ```console blocks run as
shell scripts (``set -euo pipefail``; a ```console block's ``$ `` lines), in a scratch folder that holds links to
the repository's ``configs/``, ``experiments/`` and ``benchmarks/`` (so a command reads as it would in a checkout
and writes its ``logs/`` into the scratch folder), with this interpreter's ``bin/`` first on ``PATH`` (the
``lattice-*`` commands and ``python`` of this environment). A block that cannot run in a test (it trains for
minutes, needs a SLURM cluster or ``make``'s fresh install) carries an explicit
``<!-- skip: next "why" -->`` marker above it; ``test_every_snippet_runs_or_says_why`` checks that no block is
left out in any other way.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import SkipTest

import pytest
from sybil import Example, Sybil
from sybil.evaluators.skip import Skipper
from sybil.parsers.myst import CodeBlockParser, PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *(p for p in DOCS.rglob("*.md") if not {"_build", "_generated"} & set(p.parts))])
LINKED = ("configs", "experiments", "benchmarks")  # what a command in the docs may name by a relative path
RUN_LANGUAGES = {"python", "bash", "console"}
OTHER_LANGUAGES = {"yaml", "text", ""}  # shown, not run: file contents and printed output
SHELL_TIMEOUT = 600  # seconds for one block: a few tiny training runs on a loaded 2-core machine


def _shell_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run_shell(script: str, where: str) -> None:
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=os.getcwd(),  # the page's scratch folder (see _scratch_folder)
        env=_shell_env(),
        capture_output=True,
        text=True,
        timeout=SHELL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise AssertionError(f"{where}: exit {result.returncode}\n{script}\n--- output (tail) ---\n{output}")


def _bash(example: Example) -> None:
    _run_shell(example.parsed, f"{example.path}:{example.line}")


def _console(example: Example) -> None:
    """A ```console block: the ``$ `` lines (with their ``\\`` continuations) are the commands; the rest is output."""
    commands: list[str] = []
    continued = False
    for line in str(example.parsed).splitlines():
        if continued:
            commands[-1] += "\n" + line
        elif line.startswith("$ "):
            commands.append(line[2:])
        continued = bool(commands) and line.rstrip().endswith("\\") and (continued or line.startswith("$ "))
    assert commands, f"{example.path}:{example.line}: a console block without a '$ ' command line"
    _run_shell("\n".join(commands), f"{example.path}:{example.line}")


SYBIL = Sybil(
    parsers=[
        SkipParser(),
        PythonCodeBlockParser(),
        CodeBlockParser("bash", _bash),
        CodeBlockParser("console", _console),
    ],
    path=str(ROOT),
)


@contextmanager
def _scratch_folder(folder: Path) -> Iterator[None]:
    """Work in ``folder`` (with links to the repository's folders that commands name) for the page's blocks."""
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextmanager
def _noise_registry_kept() -> Iterator[None]:
    """A page may register a noise of its own (docs/adding_a_noise.md does): the registry is as before afterwards,
    for the tests that run next in this process."""
    from lattice.noise import NOISE_PARAMETERS, NOISES

    noises, params = dict(NOISES), dict(NOISE_PARAMETERS)
    try:
        yield
    finally:
        NOISES.clear()
        NOISES.update(noises)
        NOISE_PARAMETERS.clear()
        NOISE_PARAMETERS.update(params)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_snippets_run(page: Path, tmp_path: Path) -> None:
    """Every runnable block of the page runs, in order; the explicitly skipped ones are reported with their reason."""
    document = SYBIL.parse(page)
    skipped: list[str] = []
    ran = 0
    with _scratch_folder(tmp_path), _noise_registry_kept():
        for example in document.examples():
            try:
                example.evaluate()
            except SkipTest as why:
                skipped.append(f"{page.name}:{example.line}: {why}")
                continue
            ran += not isinstance(example.region.evaluator, Skipper)  # a skip marker is not a snippet
    if skipped and not ran:
        pytest.skip("; ".join(skipped))


FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
SKIP = re.compile(r'^ *<!-- skip: next "(?P<why>[^"]+)" -->$')


def _blocks(text: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, language, skip reason or None) of each fenced block at the top level of a Markdown page."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        language = info.split()[0] if info else ""
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        skip = SKIP.match(previous)
        yield i + 1, language, skip["why"] if skip else None
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            i += 1
        i += 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_snippet_runs_or_says_why(page: Path) -> None:
    """No code block is left out silently: each is in a language the tests run, or one that is only shown (YAML,
    text, output), or MyST's own directive; and a skipped one says why next to it."""
    text = page.read_text()
    for line, language, why in _blocks(text):
        where = f"{page.relative_to(ROOT)}:{line}"
        if language.startswith("{"):  # a MyST directive (toctree, the CLI reference, math), built by Sphinx
            continue
        assert language in RUN_LANGUAGES | OTHER_LANGUAGES, (
            f"{where}: a ```{language} block is neither run by tests/test_docs.py nor a known shown-only language"
        )
        if why is not None:
            assert language in RUN_LANGUAGES, f"{where}: a skip marker above a ```{language} block, which never runs"
            assert len(why.split()) >= 3, f"{where}: say why the block is skipped, in a few words"
    # A skip marker must stand right above a block: elsewhere Sybil would skip the next block, wherever it is.
    markers = [i for i, line in enumerate(text.splitlines()) if re.match(r"^\s*<!--\s*skip:", line)]
    blocks = {line - 1 for line, _, _ in _blocks(text)}
    for i in markers:
        assert SKIP.match(text.splitlines()[i]), (
            f'{page.relative_to(ROOT)}:{i + 1}: only <!-- skip: next "why" --> is used here, one block at a time'
        )
        following = next(j for j in range(i + 1, len(text.splitlines()) + 1) if text.splitlines()[j].strip())
        assert following in blocks, f"{page.relative_to(ROOT)}:{i + 1}: a skip marker that no code block follows"


def test_readme_is_a_landing_page() -> None:
    """The README stays short (the manual is the site) and links into the docs."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for page in re.findall(r"\]\(docs/([\w/]+\.md)", readme):
        assert (DOCS / page).is_file(), f"README links to docs/{page}, which does not exist"


def _public_modules(package: Path, prefix: str) -> set[str]:
    """``lattice.x`` for every public module file and subpackage of a package folder (not its subpackages' files)."""
    names = set()
    for path in package.iterdir():
        if path.name.startswith("_") or path.name == "__pycache__":
            continue
        if path.suffix == ".py":
            names.add(f"{prefix}.{path.stem}")
        elif (path / "__init__.py").is_file():
            names.add(f"{prefix}.{path.name}")
    return names


def test_api_reference_lists_every_module() -> None:
    """Every public module of ``lattice`` and ``lattice.experiments`` has its ``automodule`` in docs/api.md, and the
    page names no module that is gone (the Sphinx build would fail on it; this says which, without Sphinx)."""
    listed = set(re.findall(r"^\.\. automodule:: ([\w.]+)$", (DOCS / "api.md").read_text(), flags=re.MULTILINE))
    modules = _public_modules(ROOT / "lattice", "lattice") | _public_modules(
        ROOT / "lattice" / "experiments", "lattice.experiments"
    )
    modules |= _public_modules(ROOT / "lattice" / "envs", "lattice.envs")
    assert sorted(modules - listed) == [], "add these to docs/api.md"
    assert sorted(listed - modules - {"lattice"}) == [], "these modules are gone: take them out of docs/api.md"
