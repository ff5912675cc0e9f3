"""The documentation site: every public name has an API entry and a docstring (fast, no
build), and `mkdocs build --strict` passes with the rendered notebooks' figures in the
built HTML (only where the `docs` extra is installed: `pip install ".[docs]"`)."""

import ast
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import gradflow

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MODULES = ("gradflow", "gradflow.problems", "gradflow.accuracy")


def public_names(module_name):
    """`(qualified name, object)` of each public name of a module: everything not starting
    with `_`, except modules from outside gradflow (`importlib`)."""
    module = sys.modules[module_name] if module_name in sys.modules else __import__(module_name, fromlist=["_"])
    out = []
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_"):
            continue
        if isinstance(obj, types.ModuleType) and not obj.__name__.startswith("gradflow"):
            continue
        if obj is sys.modules.get("gradflow.cli"):
            # Not an API: the command line has its own page (concepts/command-line.md); and `import gradflow`
            # does not import it — it shows up in vars(gradflow) only once some other test has imported it.
            continue
        out.append((f"{module_name}.{name}", obj))
    return out


def api_entries() -> set[str]:
    """The identifiers of every `::: name` entry in the docs' Markdown."""
    entries = set()
    for page in DOCS.rglob("*.md"):
        entries |= set(re.findall(r"^:::\s+(\S+)", page.read_text(), flags=re.M))
    return entries


def _attribute_docstring(module_name, name) -> str | None:
    """The string literal right after `name = ...` at the top level of the module that
    defines it (mkdocstrings shows it as the name's docstring)."""
    for path in (ROOT / "gradflow").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node, after in zip(tree.body, tree.body[1:]):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                    return after.value.value
    return None


def docstring(qualname, obj) -> str | None:
    """The object's own docstring: not one inherited, nor the `Name(field, ...)` line that
    dataclasses (and so Equinox modules) write for a class that has none."""
    if isinstance(obj, (type, types.FunctionType, types.ModuleType)):
        doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
        if isinstance(obj, type) and doc and re.fullmatch(rf"{re.escape(obj.__name__)}\(.*\)", doc.strip(), flags=re.S):
            return None
        return doc
    if callable(obj) and getattr(obj, "__doc__", None) and type(obj).__doc__ != obj.__doc__:
        return obj.__doc__
    module, name = qualname.rsplit(".", 1)
    return _attribute_docstring(module, name)


ALL = [pair for m in MODULES for pair in public_names(m)]


def test_every_public_name_has_an_api_entry():
    entries = api_entries()
    missing = []
    for qualname, obj in ALL:
        if isinstance(obj, types.ModuleType):  # a subpackage: its own entry, or entries for its contents
            if qualname not in entries and not any(e.startswith(qualname + ".") for e in entries):
                missing.append(qualname)
        elif qualname not in entries:
            missing.append(qualname)
    assert not missing, f"public names without a `::: name` entry under docs/: {missing}"


def test_every_public_name_has_a_docstring():
    missing = [qualname for qualname, obj in ALL if not (docstring(qualname, obj) or "").strip()]
    assert not missing, f"public names without a docstring: {missing}"


def test_every_api_entry_names_something_that_exists():
    """An entry for a name that was renamed or removed fails here, before a docs build."""
    for entry in sorted(api_entries()):
        module_name, _, attr = entry.rpartition(".")
        try:
            obj = importlib.import_module(entry)
        except ImportError:
            obj = getattr(importlib.import_module(module_name), attr, None)
        assert obj is not None, f"docs entry `::: {entry}` names nothing"


def test_the_main_entry_points_use_the_structured_style():
    """diffrax's style: `**Arguments:**` (and `**Returns:**`) lists in the docstring."""
    for obj in (gradflow.simulate, gradflow.train, gradflow.sweep, gradflow.accuracy.work_precision,
                gradflow.accuracy.reference, gradflow.accuracy.flow_gap, gradflow.accuracy.convergence_order):
        assert "**Arguments:**" in obj.__doc__ and "**Returns:**" in obj.__doc__, obj.__name__
    for cls in (gradflow.GradientFlow, gradflow.SignFlow, gradflow.AdamFlow, gradflow.ModifiedFlow,
                gradflow.MomentumFlow, gradflow.HeavyBallFlow, gradflow.Optimizer):
        assert "**Arguments:**" in cls.__doc__, cls.__name__
    assert "**Returns:**" in gradflow.Run.to_xarray.__doc__


def test_every_notebook_and_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"notebooks/{notebook.name}" in nav, notebook.name
    for page in DOCS.rglob("*.md"):
        assert str(page.relative_to(DOCS)) in nav, page


# --- The strict build (the `docs` extra) ---------------------------------------------------

DOCS_EXTRA = all(importlib.util.find_spec(m) for m in ("mkdocs", "material", "mkdocstrings_handlers", "mkdocs_jupyter"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not DOCS_EXTRA:
        pytest.skip('the docs extra is not installed (pip install ".[docs]"); .ci/run builds the site strictly')
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_strict_build_renders_the_notebooks_with_their_figures(site):
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        html = (site / "notebooks" / notebook.stem / "index.html").read_text()
        images = sum("image/png" in o.get("data", {}) for c in json.loads(notebook.read_text())["cells"]
                     for o in c.get("outputs", []))
        assert html.count("data:image/png;base64,") >= images, notebook.name  # every committed figure, inline
    assert "data:image/png;base64," in (site / "notebooks" / "01_cooccurrence" / "index.html").read_text()


def test_strict_build_lists_each_papers_figures(site):
    html = (site / "papers" / "figures" / "index.html").read_text()
    for paper in ("Yang et al. (2024)", "Tian et al. (2023)", "Li et al. (2025)"):
        assert paper in html
    for png in re.findall(r'src="\.\./\.\./(figures/[^"]+\.png)"', html):
        assert (site / png).stat().st_size > 1000, png
    assert 'src="../../figures/01_cooccurrence/1.png"' in html


def test_strict_build_has_an_api_entry_for_every_public_name(site):
    html = "".join(p.read_text() for p in (site / "api").rglob("index.html"))
    missing = [q for q, obj in ALL if not isinstance(obj, types.ModuleType) and f'id="{q}"' not in html]
    assert not missing, missing
