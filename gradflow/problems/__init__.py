"""Problems shipped with gradflow, and the registry the command line uses."""

from ._cooccurrence import Cooccurrence as Cooccurrence, CooccurrenceTransformer as CooccurrenceTransformer
from ._cooccurrence_claims import (
    Claim as Claim,
    claims as cooccurrence_claims,
    claims_table as claims_table,
    draw_G as draw_G,
    draw_losses as draw_losses,
    draw_scores as draw_scores,
    phase1_end as phase1_end,
)
from ._diagonal import Diagonal as Diagonal, DiagonalLinear as DiagonalLinear
from ._least_squares import LeastSquares as LeastSquares, Linear as Linear
from ._linear_network import LinearNetwork as LinearNetwork, TwoLayerLinear as TwoLayerLinear

PROBLEMS = {
    "cooccurrence": Cooccurrence,
    "linear-network": TwoLayerLinear,
    "least-squares": LeastSquares,
    "diagonal-network": DiagonalLinear,
}
"""Command-line name → problem class."""

DEFAULT_PROBLEM = "cooccurrence"
DEFAULT_T1 = {"cooccurrence": 300.0, "linear-network": 10.0, "least-squares": 50.0, "diagonal-network": 20.0}
"""A horizon on which each problem's dynamics play out, used when --t1 is not given."""
