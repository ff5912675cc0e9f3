"""A paper's claim measured on a run: statement, criterion, per-seed pass/fail, numbers."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Claim:
    """One claim: its statement, the criterion used, per-seed pass/fail and numbers.

    **Arguments:**

    - `name`: the claim's short name.
    - `statement`: what the paper states.
    - `criterion`: the criterion used to test it.
    - `passed`: per-seed pass/fail, a boolean array (seeds,).
    - `values`: the measured numbers, {name: per-seed values}.

    `claim.n_passed` is the number of seeds passing; `claim.to_json()` a
    JSON-serialisable dict.
    """

    name: str
    statement: str
    criterion: str
    passed: np.ndarray
    values: dict

    @property
    def n_passed(self) -> int:
        return int(np.sum(self.passed))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "statement": self.statement,
            "criterion": self.criterion,
            "passed": self.passed.tolist(),
            "values": {k: np.asarray(v, dtype=float).tolist() for k, v in self.values.items()},
        }


def _fmt(x) -> str:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return "n/a"
    med = np.median(x)
    if x.size == 1 or x.min() == x.max():
        return f"{med:.3g}"
    return f"{med:.3g} [{x.min():.3g}, {x.max():.3g}]"


def claims_table(items: list[Claim]) -> str:
    """A text table of claims.

    **Arguments:**

    - `items`: a list of `Claim`s.

    **Returns:**

    The table as a string, one line per claim: claim, seeds passing, measured
    numbers (median [min, max] over seeds).
    """
    width = max(len(c.name) for c in items)
    lines = [f"{'claim':<{width}}  pass   measured: median [min, max] over seeds"]
    for c in items:
        values = "; ".join(f"{k} = {_fmt(v)}" for k, v in c.values.items())
        lines.append(f"{c.name:<{width}}  {c.n_passed:>2}/{c.passed.size:<2}  {values}")
    return "\n".join(lines)


