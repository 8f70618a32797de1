"""The ``moby-al-help`` directive: the real ``--help`` text of a ``moby-al`` command.

The command-line reference is not written by hand: each section holds the help
that ``moby_al_plugin.cli.build_parser`` prints for that command, so an option
added, renamed or removed in the code changes the page at the next build. A
(sub)command that no page shows is a build warning, so a new one cannot be
left out of the reference.

Usage in a MyST page (no argument: ``moby-al --help`` itself)::

    ```{moby-al-help} label init
    ```
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

# the width of the help text in the page (argparse reads COLUMNS)
HELP_COLUMNS = "90"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _parser_for(words: tuple[str, ...]) -> argparse.ArgumentParser:
    from moby_al_plugin.cli import build_parser

    parser = build_parser()
    for depth, word in enumerate(words):
        choices = _subcommands(parser)
        if word not in choices:
            known = ", ".join(sorted(choices)) or "none"
            prefix = " ".join(("moby-al", *words[:depth]))
            raise ValueError(f"{prefix} has no subcommand {word!r} (it has: {known})")
        parser = choices[word]
    return parser


def all_commands() -> list[tuple[str, ...]]:
    """Every command path of ``moby-al``: (), ("run",), ("label", "init"), ..."""
    from moby_al_plugin.cli import build_parser

    found: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        found.append(words)
        for name, sub in _subcommands(parser).items():
            walk(sub, (*words, name))

    walk(build_parser(), ())
    return found


@contextmanager
def _columns(width: str):
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = before


def help_text(words: tuple[str, ...]) -> str:
    with _columns(HELP_COLUMNS):
        return _parser_for(words).format_help()


class MobyAlHelp(SphinxDirective):
    """A literal block with the help of ``moby-al <words>``."""

    optional_arguments = 1
    final_argument_whitespace = True
    has_content = False

    def run(self) -> list[nodes.Node]:
        words = tuple(self.arguments[0].split()) if self.arguments else ()
        try:
            text = help_text(words)
        except ValueError as error:
            logger.warning(str(error), location=self.get_location())
            return []
        documented = getattr(self.env, "moby_al_help", {})
        documented.setdefault(self.env.docname, set()).add(words)
        self.env.moby_al_help = documented
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        self.set_source_info(block)
        return [block]


def _purge(app, env, docname) -> None:
    getattr(env, "moby_al_help", {}).pop(docname, None)


def _merge(app, env, docnames, other) -> None:
    mine = getattr(env, "moby_al_help", {})
    for docname, words in getattr(other, "moby_al_help", {}).items():
        if docname in docnames:
            mine[docname] = words
    env.moby_al_help = mine


def _check_complete(app, env) -> None:
    shown = set().union(*getattr(env, "moby_al_help", {}).values())
    for words in all_commands():
        if words not in shown:
            name = " ".join(("moby-al", *words))
            logger.warning(f"the command-line reference does not show {name!r} --help")


def setup(app):
    app.add_directive("moby-al-help", MobyAlHelp)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check_complete)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
