"""Yang, Kailkhura, Wang & Liang (2024), "Training dynamics of transformers to
recognize word co-occurrence via gradient flow analysis", NeurIPS 2024,
arXiv:2410.09605.

A one-layer transformer (W_Q, W_K, W_V and a two-layer linear MLP with a fixed
±1 readout) learns whether two target words co-occur; the paper proves two
phases of gradient flow. `Cooccurrence` is the problem, `claims(run)` measures
the paper's claims on a run, `save_figures(run, directory)` draws its Fig. 1.
"""

from .._registry import register_report
from ._claims import claims as claims, phase1_end as phase1_end, report as report
from ._figures import draw_G as draw_G, draw_losses as draw_losses, draw_scores as draw_scores, save_figures as save_figures
from ._model import GROUPS as GROUPS, Cooccurrence as Cooccurrence, CooccurrenceTransformer as CooccurrenceTransformer

register_report(Cooccurrence, report=report, figures=save_figures)
