"""The two places where gradflow reaches past diffrax's and Equinox's public API.

Kept in one module, with a test (`tests/test_adapters.py`) that fails loudly when
either library changes what is used here:

- `result_code`: diffrax's per-seed result as a plain integer array. A compiled
  batched solve returns it as data (an `EnumerationItem` cannot leave a traced
  program), and diffrax has no public accessor for the integer.
- `checks_as_nan`: Equinox's runtime checks (`eqx.error_if`, used by diffrax on
  `SaveAt.ts`) raise through a host callback by default, and JAX's persistent
  compilation cache refuses programs that hold host callbacks. Equinox reads
  its mode from the environment variable `EQX_ON_ERROR` once, at import, and
  offers no public switch; here it is set to "nan" (a failing check poisons
  the output with NaN, which gradflow reports per seed) while a program is
  traced. gradflow validates the save times before tracing, so no check can
  fail for a reason other than a non-finite state.
"""

import contextlib

import diffrax as dfx


def result_code(result):
    """The integer array inside a diffrax `RESULTS` item (traced or not)."""
    return result._value


def code_of(item) -> int:
    """The integer code of one of diffrax's `RESULTS` members, e.g. `dfx.RESULTS.successful`."""
    return int(item._value)


SUCCESSFUL = code_of(dfx.RESULTS.successful)
EVENT = code_of(dfx.RESULTS.event_occurred)
MAX_STEPS = code_of(dfx.RESULTS.max_steps_reached)
DT_MIN = code_of(dfx.RESULTS.dt_min_reached)


@contextlib.contextmanager
def checks_as_nan():
    """Trace with Equinox's runtime checks set to poison outputs with NaN instead
    of raising through a host callback (see the module docstring)."""
    import equinox._errors as errors

    before = errors.EQX_ON_ERROR
    errors.EQX_ON_ERROR = "nan" if before == "raise" else before
    try:
        yield
    finally:
        errors.EQX_ON_ERROR = before
