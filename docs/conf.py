"""Sphinx configuration: the user guide (Markdown, MyST) and the API reference (autodoc + napoleon).

The API pages are generated at build time into ``docs/api/`` (one page per subpackage, every
module in it), so a new module appears without editing the docs. ``make docs`` builds with ``-W``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import analogkit  # noqa: E402

project = "analogkit"
author = "the analogkit authors"
copyright = "the analogkit authors, Apache-2.0"  # noqa: A001 - Sphinx's name
release = version = analogkit.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"analogkit {release}"
html_static_path: list[str] = []

# Docstrings are written for readers of the source: Google/NumPy sections where they help, plain
# equations in literal blocks. Cross-references to types are not resolved (no intersphinx: the
# build runs offline), so nitpicky stays off.
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_mock_imports: list[str] = []
# torch.autograd.Function.forward's inherited docstring links to PyTorch's own docs: not ours to show.
autodoc_inherit_docstrings = False
# The library's docstrings are plain text with RST-like equations, written for readers of the
# source and kept as their authors wrote them. A few trip docutils' markup rules (an unmatched "*"
# in an equation, an indented equation block without a blank line after it); those warnings would
# fail the -W build, so docutils markup warnings are silenced rather than the docstrings rewritten.
# Reference, autodoc and MyST warnings (the guide pages) still fail the build.
suppress_warnings = ["docutils"]
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# -- the API reference, generated --------------------------------------------------------------------
SUBPACKAGES = [
    ("config", "Configuration dataclasses"),
    ("tile", "Analog tiles"),
    ("periphery", "Read periphery"),
    ("devices", "Pulsed devices"),
    ("compounds", "Compound devices and training algorithms"),
    ("update", "Pulsed weight update"),
    ("inference", "Inference: noise models, programming, drift"),
    ("nn", "Analog layers and conversion"),
    ("optim", "Optimizers"),
    ("analysis", "Analyses"),
    ("experiments", "Experiments, runner and report"),
    ("data", "Data sets"),
    ("models", "Reference models"),
]
SINGLE_MODULES = [("random", "Seeding"), ("cli", "Command line")]


def _modules(package: str) -> list[str]:
    try:
        pkg = importlib.import_module(package)
    except ImportError:
        return []
    if not hasattr(pkg, "__path__"):  # a plain module
        return [package]
    return [package] + sorted(info.name for info in pkgutil.iter_modules(pkg.__path__, prefix=package + "."))


def _title(text: str) -> list[str]:
    return [text, "=" * len(text), ""]


def _write_api() -> None:
    api = HERE / "api"
    api.mkdir(exist_ok=True)
    for old in api.glob("*"):
        old.unlink()
    pages = []
    for short, title in SUBPACKAGES + SINGLE_MODULES:
        modules = _modules(f"analogkit.{short}")
        if not modules:
            continue
        lines = _title(f"{title}: ``analogkit.{short}``")
        for i, module in enumerate(modules):
            if i:
                lines += [f"``{module}``", "-" * (len(module) + 4), ""]
            lines += [f".. automodule:: {module}"]
            # a package page shows the package docstring; its modules document their own members
            lines += ["   :no-members:" if i == 0 and len(modules) > 1 else "   :members:", ""]
        (api / f"{short}.rst").write_text("\n".join(lines))
        pages.append(short)
    index = _title("API reference") + [
        "Generated from the docstrings. Each page documents one subpackage, module by module.", "",
        ".. toctree::", "   :maxdepth: 1", "", *[f"   {p}" for p in pages], "",
    ]
    (api / "index.rst").write_text("\n".join(index))


_write_api()
