"""The private library internals gradflow relies on (gradflow/_adapters.py) still exist
and mean what gradflow assumes: if diffrax or Equinox change them, this fails first."""

import diffrax as dfx
import equinox as eqx
import jax.numpy as jnp
import numpy as np

from gradflow import _adapters


def test_result_codes_are_distinct_integers():
    codes = [_adapters.SUCCESSFUL, _adapters.EVENT, _adapters.MAX_STEPS, _adapters.DT_MIN]
    assert len(set(codes)) == 4 and all(isinstance(c, int) for c in codes)
    sol = dfx.diffeqsolve(dfx.ODETerm(lambda t, y, a: -y), dfx.Euler(), 0.0, 1.0, 0.1, jnp.ones(()),
                          max_steps=3, throw=False)
    assert int(_adapters.result_code(sol.result)) == _adapters.MAX_STEPS


def test_checks_as_nan_turns_a_failing_check_into_nan():
    import equinox._errors as errors

    assert hasattr(errors, "EQX_ON_ERROR"), "equinox moved EQX_ON_ERROR: update gradflow/_adapters.py"
    with _adapters.checks_as_nan():
        fn = eqx.filter_jit(lambda x: eqx.error_if(x, x > 0, "positive"))
        out = fn(jnp.array(1.0))
    assert np.isnan(np.asarray(out))
    assert errors.EQX_ON_ERROR == "raise" or errors.EQX_ON_ERROR != "nan"  # restored
