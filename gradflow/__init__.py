"""gradflow: training dynamics of small models as continuous-time flows.

Models are Equinox modules, the gradient of their loss is a vector field, and
Diffrax integrates it with error control over a batch of seeds.
"""

import importlib.metadata

from . import accuracy as accuracy, plot as plot, problems as problems
from ._cache import disable_compile_cache as disable_compile_cache, enable_compile_cache as enable_compile_cache
from ._fused import FusedERK as FusedERK
from ._flows import (
    AbstractFlow as AbstractFlow,
    AdamFlow as AdamFlow,
    GradientFlow as GradientFlow,
    HeavyBallFlow as HeavyBallFlow,
    ModifiedFlow as ModifiedFlow,
    MomentumFlow as MomentumFlow,
    SignFlow as SignFlow,
)
from ._sde import SDEFlow as SDEFlow
from ._optim import Optimizer as Optimizer, adam_for_flow as adam_for_flow, sign_gd as sign_gd
from ._grids import AbstractGrid as AbstractGrid, LinearGrid as LinearGrid, LogGrid as LogGrid
from ._problem import AbstractProblem as AbstractProblem
from ._load import load as load
from ._sharpness import Sharpness as Sharpness
from ._run import Run as Run, RunFormatError as RunFormatError, Stats as Stats
from ._simulate import simulate as simulate
from ._sweep import sweep as sweep
from ._status import Status as Status
from ._stop import AbstractStop as AbstractStop, GradNormBelow as GradNormBelow, LossBelow as LossBelow
from ._train import train as train

try:
    __version__ = importlib.metadata.version("gradflow")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
