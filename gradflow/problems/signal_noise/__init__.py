"""Li, Huang, Han, Zhou, Suzuki, Zhu & Chen (2025), "On the optimization and
generalization of two-layer transformers with sign gradient descent", ICLR 2025,
arXiv:2410.04870.

A two-layer transformer trained by SignGD (or its flow, `gradflow.SignFlow`) on
two-patch signal + sparse-noise data (`SignalNoise`) and on the paper's noisy
MNIST (`NoisyMNIST`); `detect_stages(run)` finds the paper's four stages,
`draw_stages` draws its Fig. 1. The experiments are in
`gradflow.problems.signal_noise.experiments`.
"""

from .._registry import register_report
from ._figures import draw_stages as draw_stages, save_figures as save_figures
from ._mnist import NoisyMNIST as NoisyMNIST, default_mnist as default_mnist, load_mnist as load_mnist, read_idx as read_idx
from ._model import SignalNoise as SignalNoise, SignalNoiseTransformer as SignalNoiseTransformer, logistic_loss as logistic_loss
from ._stages import STAGES as STAGES, Stages as Stages, detect_stages as detect_stages, report as report

register_report(SignalNoise, report=report, figures=save_figures)
