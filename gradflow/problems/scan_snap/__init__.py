"""Tian, Wang, Chen & Du (2023), "Scan and Snap: understanding training dynamics
and token composition in 1-layer transformer", NeurIPS 2023, arXiv:2305.16380.

The reparameterised 1-layer transformer (Y, Z) on sequence classes, at finite
sequence length (`ScanSnap`, Lemma 1) and in the long-sequence limit
(`ScanSnapPopulation`, Lemma 2), with the theory's predictions
(`transition_time`, `snap_prediction`, ...); the paper's real-text experiment
(`TextNextToken`, Fig. 7); `claims(run)` measures the theorems on a run.
The experiments are in `gradflow.problems.scan_snap.experiments`.
"""

from .._registry import register_report
from ._claims import claims as claims, flow_rates as flow_rates, measured_transition as measured_transition, report as report
from ._figures import draw_transition as draw_transition, save_figures as save_figures
from ._model import (
    YZ as YZ,
    ScanSnap as ScanSnap,
    ScanSnapPopulation as ScanSnapPopulation,
    SequenceClasses as SequenceClasses,
    fig3_classes as fig3_classes,
    gamma as gamma,
    snap_prediction as snap_prediction,
    solve_h as solve_h,
    syn_medium as syn_medium,
    syn_small as syn_small,
    transition_time as transition_time,
)
from ._text import (
    TextNextToken as TextNextToken,
    TextTransformer as TextTransformer,
    default_corpus as default_corpus,
    load_corpus as load_corpus,
    paper_scale_text as paper_scale_text,
)

for _cls in (ScanSnapPopulation, ScanSnap):
    register_report(_cls, report=report, figures=save_figures)
del _cls
