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
from ._scan_snap import (
    ScanSnap as ScanSnap,
    ScanSnapPopulation as ScanSnapPopulation,
    SequenceClasses as SequenceClasses,
    YZ as YZ,
    fig3_classes as fig3_classes,
    gamma as gamma,
    snap_prediction as snap_prediction,
    solve_h as solve_h,
    syn_medium as syn_medium,
    syn_small as syn_small,
    transition_time as transition_time,
)
from ._scan_snap_claims import claims as scan_snap_claims, measured_transition as measured_transition
from ._mnist import NoisyMNIST as NoisyMNIST, load_mnist as load_mnist, read_idx as read_idx
from ._signal_noise import SignalNoise as SignalNoise, SignalNoiseTransformer as SignalNoiseTransformer
from ._signal_noise_stages import Stages as Stages, detect_stages as detect_stages, draw_stages as draw_stages
from ._text import TextNextToken as TextNextToken, paper_scale_text as paper_scale_text, TextTransformer as TextTransformer, load_corpus as load_corpus
from ._diagonal import Diagonal as Diagonal, DiagonalLinear as DiagonalLinear
from ._least_squares import LeastSquares as LeastSquares, Linear as Linear
from ._linear_network import LinearNetwork as LinearNetwork, TwoLayerLinear as TwoLayerLinear

PROBLEMS = {
    "cooccurrence": Cooccurrence,
    "linear-network": TwoLayerLinear,
    "least-squares": LeastSquares,
    "diagonal-network": DiagonalLinear,
    "scan-snap": ScanSnapPopulation,
    "scan-snap-finite": ScanSnap,
    "text": TextNextToken,
    "signal-noise": SignalNoise,
    "noisy-mnist": NoisyMNIST,
}
"""Command-line name → problem class."""

DEFAULT_PROBLEM = "cooccurrence"
DEFAULT_T1 = {"text": 100.0, "scan-snap": 1e4, "scan-snap-finite": 1e3, "cooccurrence": 300.0, "linear-network": 10.0, "least-squares": 50.0, "diagonal-network": 20.0,
              "signal-noise": 0.3, "noisy-mnist": 0.3}
"""A horizon on which each problem's dynamics play out, used when --t1 is not given."""
