"""Solver-accuracy tools: references, work-precision, convergence order, the gap
between an optimiser and its flow, and invariant drift. Every result is a
`Table` that prints, saves to JSON and plots (`gradflow.plot.work_precision`)."""

from ._measure import (
    convergence_order as convergence_order,
    fit_order as fit_order,
    flow_gap as flow_gap,
    invariant_drift as invariant_drift,
    work_precision as work_precision,
)
from ._errors import (
    MEASURES as MEASURES,
    SCALES as SCALES,
    TrackParams as TrackParams,
    pointwise_error as pointwise_error,
    trajectory_error as trajectory_error,
)
from ._reference import (
    Recast as Recast,
    Reference as Reference,
    obs_error as obs_error,
    param_error as param_error,
    recast as recast,
    reference as reference,
)
from ._table import Table as Table
