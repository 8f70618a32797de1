"""CSV cells a spreadsheet will not run: OWASP's CSV-injection rule, reversibly.

A spreadsheet treats a cell that begins with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return as a formula, so a file or class named
``=HYPERLINK(...)`` would run when the export is opened. OWASP's advice is a
leading single quote, which spreadsheets show as text. Here every cell that
begins with one of those characters, or with a quote itself, gets one more
quote, and the import takes exactly one away: every name reads back as it was.
"""

from __future__ import annotations

__all__ = ["FORMULA_STARTS", "neutralise", "restore"]

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def neutralise(cell: str) -> str:
    """``cell`` as an export writes it: quoted when a spreadsheet would run it."""
    return _QUOTE + cell if cell.startswith((*FORMULA_STARTS, _QUOTE)) else cell


def restore(cell: str) -> str:
    """The name an exported cell stands for (the inverse of :func:`neutralise`)."""
    return cell[1:] if cell.startswith(_QUOTE) else cell
