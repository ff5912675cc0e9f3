"""Compiling gradflow's programs, and the in-process memo of compiled programs.

A program is a module-level function applied to arguments. Its arguments are
split into arrays, which enter the compiled program as arguments (models,
data, save times, tolerances, the flow's numbers), and everything else
(problem, solver, controller, flow structure, …), which is compiled in. The
memo keys a compiled program on exactly that: the function, the compiled-in
values and the shapes and dtypes of the arrays, as `jax.jit` keys its own
cache. No data can be compiled in by gradflow, so a program found in the memo
is the program a fresh compile would build. Across processes JAX's persistent
compilation cache (`gradflow.enable_compile_cache`) keys on the lowered
program itself.
"""

import hashlib
import os
import time
from collections import OrderedDict

import equinox as eqx
import jax
import jax.tree_util as jtu

from ._adapters import checks_as_nan

_MEMO: OrderedDict = OrderedDict()
_MEMO_SIZE = 32


def compiler_options() -> dict:
    """The XLA options gradflow compiles its programs with. On the CPU: LLVM
    optimisation level 1 instead of XLA's default 2, unless `XLA_FLAGS` sets a
    level. Measured on the default problem (`simulate`, 4 seeds, 2-core CPU,
    float64, three runs each): the draw and the solve compile in 4.36–4.95 s
    against 4.65–5.14 s at level 2, the solve runs as fast (0.30 s), the drawn
    models are equal bit for bit and the losses to 5e-16. Level 0 compiles in
    3.6 s but runs the solve 3× slower and changes the drawn models at round-off."""
    if jax.default_backend() != "cpu" or "xla_backend_optimization_level" in os.environ.get("XLA_FLAGS", ""):
        return {}
    return {"xla_backend_optimization_level": 1}


def _key(fn, static, dynamic):
    leaves, treedef = jtu.tree_flatten(static)
    avals = tuple((tuple(x.shape), str(x.dtype), getattr(x, "sharding", None) is not None and _sharding(x))
                  for x in jtu.tree_leaves(dynamic))
    key = (fn, treedef, tuple(leaves), jtu.tree_structure(dynamic), avals, jax.config.jax_enable_x64)
    hash(key)
    return key


def _sharding(x):
    sharding = x.sharding
    return repr(getattr(sharding, "spec", None)), tuple(d.id for d in sharding.device_set)


def compile_program(fn, *args):
    """`fn` compiled for `args`: returns (a callable taking the same arguments,
    compile seconds; 0.0 when the memo already held it). Arguments whose
    compiled-in part is unhashable are compiled every time."""
    dynamic, static = eqx.partition(args, eqx.is_array)
    try:
        key = _key(fn, static, dynamic)
    except TypeError:
        key = None
    if key is not None and key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key], 0.0
    start = time.perf_counter()
    with checks_as_nan():
        compiled = jax.jit(lambda dyn: fn(*eqx.combine(dyn, static))).lower(dynamic).compile(compiler_options())
    elapsed = time.perf_counter() - start

    def call(*call_args):
        return compiled(eqx.partition(call_args, eqx.is_array)[0])

    call.compiled = compiled  # for inspection (memory_analysis, cost_analysis) by benchmarks

    if key is not None:
        _MEMO[key] = call
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return call, elapsed


def compile_lowered(fn, *args):
    """As `compile_program`, for a program that may compile in what it reads while
    it is traced (a problem's `init` reading a file): it is traced and lowered
    on every call, and the memo keys it on the lowered program's text, which
    holds every constant in full. Returns (callable, compile seconds)."""
    dynamic, static = eqx.partition(args, eqx.is_array)
    with checks_as_nan():
        lowered = jax.jit(lambda dyn: fn(*eqx.combine(dyn, static))).lower(dynamic)
    # The text fixes the computation; the argument and result structures (which the
    # compiled program checks and rebuilds) are part of what it holds too.
    key = ("lowered", hashlib.sha256(lowered.as_text().encode()).hexdigest(), lowered.in_tree, lowered.out_tree,
           jax.config.jax_enable_x64)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        compiled, elapsed = _MEMO[key], 0.0
    else:
        start = time.perf_counter()
        compiled = lowered.compile(compiler_options())
        elapsed = time.perf_counter() - start
        _MEMO[key] = compiled
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return (lambda *call_args: compiled(eqx.partition(call_args, eqx.is_array)[0])), elapsed
