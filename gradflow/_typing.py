"""Type aliases shared across gradflow (one module, as in diffrax/equinox)."""

from typing import Any, TypeAlias

from jaxtyping import Array, Float, Int, PyTree

Model: TypeAlias = PyTree[Any]
"""A model: an Equinox module (or any pytree) whose array leaves are parameters."""

Data: TypeAlias = PyTree[Any]
"""One seed's training data, as returned by `problem.init`."""

Params: TypeAlias = PyTree[Array]
"""The trainable partition of a model (non-trainable leaves are `None`)."""

Observables: TypeAlias = dict[str, Array]
Scalar: TypeAlias = Float[Array, ""]

__all__ = [
    "Array",
    "Data",
    "Float",
    "Int",
    "Model",
    "Observables",
    "Params",
    "PyTree",
    "Scalar",
]
