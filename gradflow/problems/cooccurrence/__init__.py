"""Yang, Kailkhura, Wang & Liang (2024), "Training dynamics of transformers to
recognize word co-occurrence via gradient flow analysis", NeurIPS 2024,
arXiv:2410.09605.

A one-layer transformer (W_Q, W_K, W_V and a two-layer linear MLP with a fixed
±1 readout) learns whether two target words co-occur; the paper proves two
phases of gradient flow. `Cooccurrence` is the problem, `claims(run)` measures
the paper's claims on a run (`NOTES`: where they differ, and why),
`save_figures(run, directory)` draws its Fig. 1; `_theory` holds the phase-1 and
max-margin reductions the claims' conditions are derived from.
"""

from .._registry import register_report
from ._claims import NOTES as NOTES, RISE_TOL as RISE_TOL, claims as claims, phase1_end as phase1_end, report as report
from ._figures import draw_G as draw_G, draw_losses as draw_losses, draw_scores as draw_scores, save_figures as save_figures
from ._model import GROUPS as GROUPS, Cooccurrence as Cooccurrence, CooccurrenceTransformer as CooccurrenceTransformer
from ._theory import (
    distinct_word_tokens as distinct_word_tokens,
    max_margin_G as max_margin_G,
    max_margin_sums as max_margin_sums,
    memorisation_threshold as memorisation_threshold,
    phase1_rate as phase1_rate,
    rise_threshold as rise_threshold,
)

register_report(Cooccurrence, report=report, figures=save_figures)
