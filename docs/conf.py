"""Sphinx configuration of the moby_al_plugin documentation.

Build it with ``make docs`` (``sphinx-build -W --keep-going -b html docs
docs/_build/html``): every warning fails the build.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package of this checkout, installed or not
sys.path.insert(0, str(DOCS / "_ext"))

# matplotlib is imported by some documented modules; never open a window
os.environ.setdefault("MPLBACKEND", "Agg")

import moby_al_plugin  # noqa: E402

project = "moby_al_plugin"
author = "moby_al_plugin contributors"
copyright = "moby_al_plugin contributors, MIT License"
release = moby_al_plugin.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "cli_help",  # docs/_ext/cli_help.py: the `moby-al-help` directive
]

# .rst first: autosummary writes its generated pages (docs/api/generated/) in it
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# -- Markdown ---------------------------------------------------------------
myst_enable_extensions = ["colon_fence"]
# "page.md#a-heading" links are checked against the page's headings (h1-h3)
myst_heading_anchors = 3

# -- API reference ----------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
# the package's public names are imported on first use (PEP 562 __getattr__):
# autosummary asks for them by attribute, so `moby_al_plugin.MoBYClassifier`
# resolves like any other attribute and is documented under that name
autodoc_default_options = {"show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc "Parameters" sections say the types
autodoc_mock_imports: list[str] = []

# numpydoc: the autosummary class template lists the members; numpydoc's own
# member tables would document every method a second time (duplicate objects)
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
# "See Also" entries and parameter types are not cross-referenced: they name
# torch, skorch, scikit-learn and numpy types this build has no inventory for
numpydoc_xref_param_type = False

# Only references that resolve are linked; an unresolved one (a torch.nn.Module,
# a skorch.NeuralNet, a numpy.ndarray named in a docstring or a signature)
# stays plain text instead of a warning, since no inventory of those projects
# is fetched (the build runs offline).
nitpicky = False

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"moby_al_plugin {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"changelog": [], "cli": []}


# scikit-learn adds `set_fit_request`, `set_score_request`, ... to every estimator
# whose methods take extra arguments (metadata routing). They are scikit-learn's
# machinery, documented there; their docstrings point into scikit-learn's own
# glossary and labels, which this build cannot resolve.
def _skip_sklearn_routing(app, what, name, obj, skip, options):
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


# A class page documents the methods written in this package, its own and those
# of the package's base classes (`MoBYClassifier.fit` comes from
# `skorch_base.MoBYNetBase`), and leaves out the dozens it inherits from skorch,
# scikit-learn and modAL: the class's bases are named at the top of its page.
def _skip_foreign_methods(app, what, name, obj, skip, options):
    if what != "class":
        return None
    func = obj.fget if isinstance(obj, property) else obj
    func = getattr(func, "__func__", func)
    if not (inspect.isroutine(func) or isinstance(obj, property)):
        return None
    module = getattr(func, "__module__", None) or ""
    if module != "moby_al_plugin" and not module.startswith("moby_al_plugin."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_routing)
    app.connect("autodoc-skip-member", _skip_foreign_methods)
