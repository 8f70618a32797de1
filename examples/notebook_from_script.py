"""Build ``teaching_active_learning.ipynb`` from ``teaching_active_learning.py``.

The script is the source: its cells are separated by ``# %%`` lines, and a
``# %% [markdown]`` cell holds Markdown as comment lines. The notebook is
written without outputs. Run ``python examples/notebook_from_script.py``
after editing the script; a test checks that the two agree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["script_cells", "notebook_from_script", "main"]

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "teaching_active_learning.py"
NOTEBOOK = HERE / "teaching_active_learning.ipynb"


def script_cells(text: str) -> list[tuple[str, str]]:
    """``(kind, source)`` of each cell of a ``# %%`` script; kind is "code" or "markdown"."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip():
            raise ValueError("the script must start with a '# %%' cell marker")
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        source = "\n".join(lines).strip("\n")
        if source:
            out.append((kind, source))
    return out


def notebook_from_script(text: str) -> dict:
    """A notebook (nbformat 4 JSON) with the script's cells and no outputs."""
    cells = []
    for kind, source in script_cells(text):
        cell = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(text: str) -> str:
    """The notebook file's text for a script's text."""
    notebook = notebook_from_script(text)
    for number, cell in enumerate(notebook["cells"]):
        cell["id"] = f"cell-{number}"
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the notebook; ``--check`` only reports whether it is up to date."""
    argv = sys.argv[1:] if argv is None else argv
    text = render(SCRIPT.read_text(encoding="utf-8"))
    if "--check" in argv:
        same = NOTEBOOK.is_file() and NOTEBOOK.read_text(encoding="utf-8") == text
        print(f"{NOTEBOOK.name} is {'up to date' if same else 'out of date'}")
        return 0 if same else 1
    NOTEBOOK.write_text(text, encoding="utf-8")
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
