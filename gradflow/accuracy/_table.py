"""`Table`: the result of every accuracy tool — rows that print, save to JSON and plot."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None  # JSON has no NaN/Inf: a real null
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "-" if math.isnan(v) else str(v)
        return f"{v:.3g}" if (v == 0 or 1e-3 <= abs(v) < 1e5) else f"{v:.2e}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


@dataclasses.dataclass
class Table:
    """Rows of measurements (dicts with the same keys) and a description of how
    they were made.

    `print(table)` shows them aligned; `save(path)` writes JSON (load it with
    `Table.load`); `table.column(name)` is one column as an array and
    `table.where(solver="Tsit5")` the rows with those values.

    **Arguments:**

    - `title`: the table's title.
    - `rows`: a list of plain dicts.
    - `meta`: a dict describing how the rows were made (default empty).
    """

    title: str
    rows: list
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        cols = []
        for row in self.rows:
            cols += [k for k in row if k not in cols]
        return cols

    def column(self, name) -> np.ndarray:
        values = [row.get(name, np.nan) for row in self.rows]
        return np.array([np.nan if v is None else v for v in values])

    def where(self, **equal) -> "Table":
        """The rows whose values equal those given, e.g. `table.where(solver="Tsit5")`."""
        rows = [r for r in self.rows if all(r.get(k) == v for k, v in equal.items())]
        return Table(self.title, rows, dict(self.meta))

    def __str__(self) -> str:
        cols = [c for c in self.columns if not isinstance(self.rows[0].get(c), (list, dict, np.ndarray))]
        cells = [cols] + [[_cell(r.get(c, "")) for c in cols] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
        lines = [self.title, "  ".join(c.rjust(w) for c, w in zip(cells[0], widths))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells[1:]]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"title": self.title, "meta": _jsonable(self.meta), "rows": _jsonable(self.rows)}

    def save(self, path) -> Path:
        """Write the table as JSON (atomically: a temporary file, then a rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> "Table":
        """A saved table; its nulls (a failed or skipped run's errors) read back as NaN."""
        data = json.loads(Path(path).read_text())
        rows = [{k: (np.nan if v is None else v) for k, v in row.items()} for row in data["rows"]]
        return cls(data["title"], rows, data.get("meta", {}))
