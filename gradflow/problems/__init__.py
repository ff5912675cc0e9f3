"""Problems shipped with gradflow, and the registry the command line uses."""

from ._diagonal import Diagonal as Diagonal, DiagonalLinear as DiagonalLinear
from ._least_squares import LeastSquares as LeastSquares, Linear as Linear
from ._linear_network import LinearNetwork as LinearNetwork, TwoLayerLinear as TwoLayerLinear

PROBLEMS = {
    "linear-network": TwoLayerLinear,
    "least-squares": LeastSquares,
    "diagonal-network": DiagonalLinear,
}
"""Command-line name → problem class."""

DEFAULT_PROBLEM = "linear-network"
DEFAULT_T1 = {"linear-network": 10.0, "least-squares": 50.0, "diagonal-network": 20.0}
"""A horizon on which each problem's dynamics play out, used when --t1 is not given."""
