"""A Sphinx directive that renders a command's options from its argparse parser, so the CLI reference cannot drift.

Usage in a MyST page::

    ```{lattice-cli} lattice.experiments.cli:train_main
    ```

The target is ``module:function`` (or ``path/to/script.py:function``, relative to the repository root). A function
that returns an ``argparse.ArgumentParser`` (a ``build_parser``-like function) is called as it is; any other
function (a command's ``main``) is called with ``["--help"]`` while ``ArgumentParser.parse_known_args`` is replaced
by a stand-in that hands back the parser the function built and stops it there, so whichever way a command builds
its parser, the page shows that parser's arguments: nothing is copied from the source.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]


class _Parsed(Exception):
    """Raised by the stand-in ``parse_known_args`` with the parser a command built."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def _function(target: str) -> Callable[..., Any]:
    """``module:function`` or ``script.py:function`` → the function."""
    where, _, name = target.partition(":")
    if where.endswith(".py"):
        path = ROOT / where
        spec = importlib.util.spec_from_file_location(f"_cli_reference_{path.stem}", path)
        assert spec is not None and spec.loader is not None, f"cannot import {path}"
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return getattr(module, name)


def parser_of(target: str) -> argparse.ArgumentParser:
    """The parser of a command: built by a parser builder, or captured from a ``main`` at its first parse."""
    function = _function(target)
    if not inspect.signature(function).parameters:  # a builder takes no argument and returns the parser
        parser = function()
        if isinstance(parser, argparse.ArgumentParser):
            return parser
        raise TypeError(f"{target} returned {type(parser).__name__}, not an ArgumentParser")

    original = argparse.ArgumentParser.parse_known_args

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise _Parsed(self)

    argparse.ArgumentParser.parse_known_args = capture  # type: ignore[method-assign]
    try:
        function(["--help"])
    except _Parsed as parsed:
        return parsed.parser
    finally:
        argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
    raise RuntimeError(f"{target} returned without parsing its arguments")


def _invocation(action: argparse.Action, formatter: argparse.HelpFormatter) -> str:
    """``--n-envs N_ENVS``, ``-n, --timesteps TIMESTEPS``, ``paths [paths ...]``: as ``--help`` writes it."""
    if not action.option_strings:
        return formatter._format_args(action, formatter._get_default_metavar_for_positional(action))
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    args = formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
    return ", ".join(action.option_strings) + " " + args


def _details(action: argparse.Action, formatter: argparse.HelpFormatter) -> str:
    """The help text (``%(default)s`` expanded), then what ``--help`` leaves to the reader: choices, default."""
    text = formatter._expand_help(action) if action.help else ""
    extra = []
    if action.choices is not None and not any(str(c) in text for c in action.choices):
        extra.append("one of " + ", ".join(map(str, action.choices)))
    if action.required:
        extra.append("required")
    default = action.default
    shows_default = "default" in text.lower()  # the help already says it (e.g. "(default: 60)")
    if (
        action.option_strings
        and action.nargs != 0
        and default not in (None, [], argparse.SUPPRESS)
        and not shows_default
    ):
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
        try:  # a path inside the installed package reads better relative to it
            shown = str(Path(shown).relative_to(ROOT))
        except ValueError:
            pass
        extra.append(f"default: {shown}")
    return text + (f" ({'; '.join(extra)})" if extra else "")


class LatticeCli(SphinxDirective):
    """Renders one command: its usage and description as ``--help`` prints them, then one entry per argument."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        parser = parser_of(self.arguments[0])
        formatter = parser._get_formatter()
        out: list[nodes.Node] = [nodes.literal_block(text=parser.format_usage().strip())]
        if parser.description:
            out.append(nodes.literal_block(text=parser.description.strip()))
        for group in parser._action_groups:
            actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS]
            if not actions:
                continue
            out.append(nodes.rubric(text=group.title or "arguments"))
            items = nodes.definition_list()
            for action in actions:
                term = nodes.term()
                term += nodes.literal(text=_invocation(action, formatter))
                definition = nodes.definition()
                definition += nodes.paragraph(text=_details(action, formatter))
                items += nodes.definition_list_item("", term, definition)
            out.append(items)
        exclusive = [g for g in parser._mutually_exclusive_groups if g._group_actions]
        for group in exclusive:
            paragraph = nodes.paragraph(text="At most one of ")
            for i, action in enumerate(a for a in group._group_actions if a.option_strings):
                if i:
                    paragraph += nodes.Text(", ")
                paragraph += nodes.literal(text=action.option_strings[0])
            paragraph += nodes.Text(".")
            out.append(paragraph)
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("lattice-cli", LatticeCli)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
