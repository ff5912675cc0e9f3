"""`FusedERK`: diffrax's explicit Runge–Kutta step, with its stages unrolled.

diffrax evaluates the stages of an explicit Runge–Kutta method in a `while_loop`
over stages, each stage forming the padded tableau row times the stacked buffer
of all stages, so every stage reads all of them: on the 57,344-parameter
co-occurrence state a Tsit5 step's arithmetic cost 786–804 µs, 7 gradients' worth,
against 63 µs for this step (`benchmarks/profile_step.py`).
That generality serves implicit and multi-tableau methods and reverse-mode
differentiation through the step, none of which gradflow uses. `FusedERK` wraps
one of diffrax's explicit solvers and takes the same step with the stages
unrolled in Python: each stage's input is the sum over its *nonzero* tableau
entries only, so XLA fuses it into one pass, and nothing is padded or stacked
except the dense-output buffer `k` diffrax's interpolations read. It is a
diffrax solver (`diffrax.AbstractAdaptiveSolver`), so it keeps working with
`diffeqsolve`, its step-size controllers, `SaveAt`, events and interpolation.
Results equal diffrax's step to round-off (the sums run in another order).
"""

import diffrax as dfx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu


def _combine(base, scale, coefficients, fs):
    """base + scale · Σ c_j f_j over the nonzero c_j, leaf by leaf (base None: no
    base), written as one expression so that XLA fuses it into one pass."""
    terms = [(float(c), f) for c, f in zip(coefficients, fs) if c != 0]

    def leaf(b, *f):
        total = None
        for (c, _), fj in zip(terms, f):
            total = c * fj if total is None else total + c * fj
        if total is None:
            return jnp.zeros_like(b)
        return scale * total if b is None else b + scale * total

    if not terms:
        return jtu.tree_map(jnp.zeros_like, base if base is not None else fs[0])
    if base is None:
        return jtu.tree_map(lambda *f: leaf(None, *f), *[f for _, f in terms])
    return jtu.tree_map(leaf, base, *[f for _, f in terms])


def fusable(solver, terms) -> bool:
    """Whether `FusedERK` can take `solver`'s steps on `terms`: an explicit
    Runge–Kutta method with one Butcher tableau, on an ODE term."""
    if isinstance(solver, FusedERK):
        return False
    tableau = getattr(type(solver), "tableau", None)
    return (isinstance(solver, dfx.AbstractERK) and isinstance(tableau, dfx.ButcherTableau)
            and not tableau.implicit and isinstance(terms, dfx.ODETerm))


class FusedERK(dfx.AbstractAdaptiveSolver):
    """The step of the explicit Runge–Kutta `solver` (e.g. `diffrax.Tsit5()`),
    with its stages unrolled and fused (see the module docstring). Same order,
    error estimate, dense output and FSAL behaviour as `solver`.

    **Arguments:**

    - `solver`: a diffrax explicit Runge–Kutta solver with one Butcher tableau
      (Heun, Midpoint, Ralston, Bosh3, Tsit5, Dopri5, Dopri8; diffrax's Euler is not
      one and needs no fusing).
    """

    solver: dfx.AbstractERK

    def __check_init__(self):
        tableau = getattr(type(self.solver), "tableau", None)
        if not (isinstance(self.solver, dfx.AbstractERK) and isinstance(tableau, dfx.ButcherTableau)
                and not tableau.implicit):
            raise TypeError(f"`FusedERK` takes a diffrax explicit Runge–Kutta solver with one Butcher tableau "
                            f"(e.g. diffrax.Tsit5()); got {type(self.solver).__name__}.")

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    @property
    def tableau(self) -> dfx.ButcherTableau:
        return type(self.solver).tableau

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def init(self, terms, t0, t1, y0, args):
        if self.tableau.fsal:  # as diffrax: the first step (or one after a jump) evaluates f(t0, y0)
            return jnp.array(True), jtu.tree_map(jnp.zeros_like, y0)
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        tab = self.tableau
        if not isinstance(_unwrap(terms), dfx.ODETerm):
            raise TypeError("`FusedERK` integrates ODEs: `terms` must be a diffrax.ODETerm.")
        dt = terms.contr(t0, t1)
        if tab.fsal:
            first, f_last = solver_state
            f0 = jax.lax.cond(first | made_jump, lambda: terms.vf(t0, y0, args), lambda: f_last)
        else:
            f0 = terms.vf(t0, y0, args)
        # Stages as vector-field values f_i (k_i = f_i·dt, formed only where used), so
        # each stage input y0 + dt·Σ a_ij f_j is one fused pass over its terms.
        fs = [f0]
        z = y0
        for c, a in zip(tab.c, tab.a_lower):
            z = _combine(y0, dt, a, fs)
            fs.append(terms.vf(t1 if c == 1 else t0 + float(c) * dt, z, args))
        y1 = z if tab.ssal else _combine(y0, dt, tab.b_sol, fs)
        y_error = _combine(None, dt, tab.b_error, fs)
        dense_info = dict(y0=y0, y1=y1, k=jtu.tree_map(lambda *f: dt * jnp.stack(f), *fs))
        state = (jnp.array(False), fs[-1]) if tab.fsal else None
        return y1, y_error, dense_info, state, dfx.RESULTS.successful


def _unwrap(terms):
    """The term inside diffrax's direction wrapper (`WrapTerm`)."""
    while hasattr(terms, "term"):
        terms = terms.term
    return terms
