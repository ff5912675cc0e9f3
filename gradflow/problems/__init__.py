"""Problems shipped with gradflow, and the registries the command line uses.

Reference problems with closed forms (and the soft-committee teacher–student
network of Saad & Solla 1995) are single modules here; each paper has
its own subpackage (model and data, claims, figures, experiments):

- `gradflow.problems.cooccurrence`: Yang, Kailkhura, Wang & Liang (2024),
  arXiv:2410.09605.
- `gradflow.problems.scan_snap`: Tian, Wang, Chen & Du (2023), arXiv:2305.16380.
- `gradflow.problems.signal_noise`: Li, Huang, Han, Zhou, Suzuki, Zhu & Chen
  (2025), arXiv:2410.04870.

A problem's text report and figures are found by its class (`report(run)`,
`figures(run, directory)`); register your own with `register_report`.
"""

from . import cooccurrence as cooccurrence, scan_snap as scan_snap, signal_noise as signal_noise
from ._claims import Claim as Claim, claims_table as claims_table
from ._diagonal import Diagonal as Diagonal, DiagonalLinear as DiagonalLinear
from ._digits import MLP as MLP, DigitsMLP as DigitsMLP
from ._least_squares import LeastSquares as LeastSquares, Linear as Linear
from ._linear_network import LinearNetwork as LinearNetwork, TwoLayerLinear as TwoLayerLinear
from . import _teacher_student
from ._registry import figures as figures, register_report as register_report, report as report
from ._teacher_student import (
    SoftCommittee as SoftCommittee,
    TeacherStudent as TeacherStudent,
    draw_overlaps as draw_overlaps,
    population_error as population_error,
    specialisation as specialisation,
)
from .cooccurrence import (
    Cooccurrence as Cooccurrence,
    CooccurrenceTransformer as CooccurrenceTransformer,
    claims as cooccurrence_claims,
    draw_G as draw_G,
    draw_losses as draw_losses,
    draw_scores as draw_scores,
    phase1_end as phase1_end,
)
from .scan_snap import (
    YZ as YZ,
    ScanSnap as ScanSnap,
    ScanSnapPopulation as ScanSnapPopulation,
    SequenceClasses as SequenceClasses,
    TextNextToken as TextNextToken,
    TextTransformer as TextTransformer,
    claims as scan_snap_claims,
    fig3_classes as fig3_classes,
    gamma as gamma,
    load_corpus as load_corpus,
    measured_transition as measured_transition,
    paper_scale_text as paper_scale_text,
    snap_prediction as snap_prediction,
    solve_h as solve_h,
    syn_medium as syn_medium,
    syn_small as syn_small,
    transition_time as transition_time,
)
from .signal_noise import (
    NoisyMNIST as NoisyMNIST,
    SignalNoise as SignalNoise,
    SignalNoiseTransformer as SignalNoiseTransformer,
    Stages as Stages,
    detect_stages as detect_stages,
    draw_stages as draw_stages,
    load_mnist as load_mnist,
    read_idx as read_idx,
)

register_report(TeacherStudent, report=_teacher_student.report, figures=_teacher_student.save_figures)

PROBLEMS = {
    "cooccurrence": Cooccurrence,
    "linear-network": TwoLayerLinear,
    "least-squares": LeastSquares,
    "diagonal-network": DiagonalLinear,
    "teacher-student": TeacherStudent,
    "scan-snap": ScanSnapPopulation,
    "scan-snap-finite": ScanSnap,
    "text": TextNextToken,
    "signal-noise": SignalNoise,
    "noisy-mnist": NoisyMNIST,
    "digits-mlp": DigitsMLP,
}
"""Command-line name → problem class. Each class's `default_t1` is the horizon
`gradflow run` integrates to when --t1 is not given."""

DEFAULT_PROBLEM = "cooccurrence"
"""The problem `gradflow run` simulates when none is named."""
