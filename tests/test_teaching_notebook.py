"""The teaching notebook: in step with its script, stored without outputs, and it runs."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOK = EXAMPLES / "teaching_active_learning.ipynb"


def _tool():
    spec = importlib.util.spec_from_file_location("nb_tool", EXAMPLES / "notebook_from_script.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_is_the_script():
    tool = _tool()
    script = (EXAMPLES / "teaching_active_learning.py").read_text(encoding="utf-8")
    assert NOTEBOOK.read_text(encoding="utf-8") == tool.render(script), (
        "run python examples/notebook_from_script.py"
    )
    kinds = [kind for kind, _ in tool.script_cells(script)]
    assert kinds.count("markdown") >= 6 and kinds.count("code") >= 6


def test_notebook_is_stored_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.slow
def test_notebook_executes(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    root = str(EXAMPLES.parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("TEACHING_OUTPUT", str(tmp_path / "pictures"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # its run time (about 70 s on two quiet cores) is a figure, not a test: a
    # loaded machine is slower, and the per-cell timeout still bounds a hang
    nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    written = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    for name in ["classes.png", "learning_curves.png", "gallery1.png", "map4.png"]:
        assert name in written, written
    images = [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 10
