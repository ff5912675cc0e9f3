"""mkdocs hooks: bring the repository's own notebooks, benchmark tables and figures into
the site, so that the docs never hold a copy that can go stale.

- `notebooks/*.ipynb` become the pages `notebooks/NAME.ipynb` (rendered by mkdocs-jupyter
  from their committed outputs; nothing is executed).
- `benchmarks/README.md` becomes the page `benchmarks/`, and `benchmarks/figures/*.png`
  its figures at the same relative paths.
- Every image a notebook's committed outputs hold becomes `figures/NAME/K.png`.
- In a page, `<!-- figures: NAME -->` turns into the list of notebook NAME's figures,
  each under the heading of the notebook section it is drawn in, and
  `<!-- output: NAME TEXT -->` into the text output of NAME's first code cell whose
  source contains TEXT (a claims table, say). A notebook committed without outputs
  gives a line saying so.
"""

import base64
import json
import posixpath
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BENCHMARKS = ROOT / "benchmarks"


def _notebook(name: str) -> dict:
    path = NOTEBOOKS / f"{name}.ipynb"
    if not path.exists():
        raise ValueError(f"docs: no notebook {path}")
    return json.loads(path.read_text())


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def notebook_figures(name: str) -> list[tuple[str, bytes]]:
    """(section heading, PNG bytes) of each image in the notebook's committed outputs."""
    heading, figures = name, []
    for cell in _notebook(name)["cells"]:
        if cell["cell_type"] == "markdown":
            for line in _text(cell["source"]).splitlines():
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                figures.append((heading, base64.b64decode(_text(png))))
    return figures


def notebook_output(name: str, text: str) -> str | None:
    """The text output of the first code cell whose source contains `text`."""
    for cell in _notebook(name)["cells"]:
        if cell["cell_type"] == "code" and text in _text(cell["source"]):
            parts = []
            for output in cell.get("outputs", []):
                if "text" in output:
                    parts.append(_text(output["text"]))
                elif "text/plain" in output.get("data", {}) and "image/png" not in output.get("data", {}):
                    parts.append(_text(output["data"]["text/plain"]))
            return "".join(parts).strip() or None
    raise ValueError(f"docs: notebook {name} has no code cell containing {text!r}")


@event_priority(100)  # before mkdocs-jupyter looks for notebooks among the files
def on_files(files, config):
    def repository_file(path: Path) -> File:  # served at its path in the repository
        return File(str(path.relative_to(ROOT)), str(ROOT), config["site_dir"], config["use_directory_urls"])

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(repository_file(path))
        for k, (_, png) in enumerate(notebook_figures(path.stem), start=1):
            files.append(File.generated(config, f"figures/{path.stem}/{k}.png", content=png))
    files.append(repository_file(BENCHMARKS / "README.md"))  # the page benchmarks/
    for path in sorted((BENCHMARKS / "figures").glob("*.png")):
        files.append(repository_file(path))
    return files


def _relative(page, target: str) -> str:
    here = posixpath.dirname(page.file.src_uri)
    return posixpath.relpath(target, here or ".")


def _figures_markdown(page, name: str) -> str:
    figures = notebook_figures(name)
    if not figures:
        return (f"*Notebook `{name}` is committed without outputs here: its figures appear once "
                f"its full run is committed (run it with `jupyter nbconvert --execute`).*")
    lines, last = [], None
    for k, (heading, _) in enumerate(figures, start=1):
        if heading != last:
            lines += [f"**{heading}**", ""]
            last = heading
        lines += [f"![{name}, figure {k}: {heading}]({_relative(page, f'figures/{name}/{k}.png')})", ""]
    return "\n".join(lines)


def _output_markdown(name: str, text: str) -> str:
    out = notebook_output(name, text)
    if out is None:
        return f"*Notebook `{name}` is committed without this output here; run the notebook to see it.*"
    return "```text\n" + out + "\n```"


def on_page_markdown(markdown, page, config, files):
    markdown = re.sub(r"<!-- figures: (\S+) -->", lambda m: _figures_markdown(page, m.group(1)), markdown)
    markdown = re.sub(r"<!-- output: (\S+) (.+?) -->", lambda m: _output_markdown(m.group(1), m.group(2)), markdown)
    return markdown


