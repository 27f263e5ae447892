"""Sphinx configuration of the cgmem_nb guide (``sphinx-build -W -b html docs build/docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import cgmem_nb  # noqa: E402

project = "cgmem_nb"
author = "the cgmem_nb authors"
copyright = "the cgmem_nb authors; MIT OR Apache-2.0"
version = release = cgmem_nb.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # Args: / Returns: / Raises: sections of the docstrings
    "cgmem_docgen",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "README.md", "generated/cli-usage.md", "generated/versions-table.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"undoc-members": False}
# Type hints name pandas and typing objects Sphinx cannot link offline; that is not an error.
nitpicky = False
suppress_warnings = ["myst.xref_missing"]

html_theme = "alabaster"
html_title = f"cgmem_nb {release}"
html_static_path: list[str] = []
