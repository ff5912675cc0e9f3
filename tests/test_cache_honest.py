"""A compile cache keys on what it holds: data read from files are arguments of
the compiled solve, never constants, so no cache hands back another input's
results (found: `TextNextToken(path=...)` run again after the file changed gave
the first file's numbers bit for bit, with the compile cache on)."""

import gzip
import subprocess
import sys

import numpy as np
import pytest

import gradflow as gf
import gradflow._compile
from gradflow.problems import PROBLEMS, NoisyMNIST, TextNextToken

from test_mnist import idx_bytes

WORDS = "the cat sat on a mat dog ran to bird sang tree saw rug".split()


def write_text(path, seed):
    rng = np.random.default_rng(seed)
    path.write_text(" ".join(rng.choice(WORDS, 600)) + "\n")


def write_mnist(folder, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(2, dtype=np.uint8), 30)
    images = rng.integers(0, 255, (60, 28, 28)).astype(np.uint8)
    folder.mkdir(exist_ok=True)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))


CASES = {
    "text": (write_text, "corpus.txt",
             lambda p: TextNextToken(path=p, vocab=12, context=3, n_train=32, n_heldout=16, d=4)),
    "mnist": (write_mnist, "mnist",
              lambda p: NoisyMNIST(path=p, digits=(0, 1), n=16, n_test=8, downsample=7, s=4, m_k=3, m_v=3)),
}


FILE_PROBLEMS = ("text", "noisy-mnist", "digits-mlp")  # the shipped problems that read files


def file_problem(name, folder):
    """A small instance of a shipped problem that reads files, on files written into
    `folder` (so tests run where shared/data is absent); None for the other problems."""
    if name not in FILE_PROBLEMS:
        return None
    write, filename, make = CASES["text" if name == "text" else "mnist"]
    write(folder / filename, 0)
    if name == "digits-mlp":
        return gradflow.problems.DigitsMLP(path=str(folder / filename), n=16, pool=7, width=4)
    return make(str(folder / filename))


def _run(problem):
    return gf.simulate(problem, t1=0.05, seeds=2, save=gf.LogGrid(n=4, t_min=1e-3))


def _cold():
    """Nothing compiled before is reused: the in-process memo is emptied and the
    persistent cache is off."""
    gradflow._compile._MEMO.clear()
    gf.disable_compile_cache()


def assert_same(a, b):
    for name in a.obs:
        assert np.array_equal(a.obs[name], b.obs[name], equal_nan=True), name
    assert np.array_equal(a.stats.steps, b.stats.steps)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_changed_file_changes_the_results_with_the_cache_on(case, tmp_path):
    write, name, make = CASES[case]
    path = tmp_path / name
    write(path, 0)
    problem = make(str(path))
    gf.enable_compile_cache(tmp_path / "cache")
    try:
        first_on = _run(problem)
        write(path, 1)  # same shapes, other contents
        second_on = _run(problem)
        assert second_on.stats.compile_time < first_on.stats.compile_time  # the solve's program was reused
    finally:
        _cold()
    second_off = _run(problem)
    write(path, 0)
    _cold()
    first_off = _run(problem)
    assert not np.array_equal(first_on.obs["loss"], second_on.obs["loss"])
    assert_same(first_on, first_off)
    assert_same(second_on, second_off)


def test_the_cli_reads_a_changed_corpus_with_the_cache_on(tmp_path):
    """The user's report, as they ran it: `gradflow run text --set path=FILE` twice
    with the file changed between, the compile cache on (the CLI's default)."""
    corpus = tmp_path / "corpus.txt"

    def run(out, *extra):
        argv = [sys.executable, "-m", "gradflow.cli", "run", "text", "--set", f"path={corpus}", "--set", "vocab=12",
                "--set", "context=3", "--set", "n_train=32", "--set", "n_heldout=16", "--set", "d=4",
                "--seeds", "2", "--t1", "0.05", "--save-n", "4", "--devices", "1", "--no-progress",
                "--no-checkpoint", "--out", str(tmp_path / out), "--cache-dir", str(tmp_path / "cache"), *extra]
        done = subprocess.run(argv, capture_output=True, text=True, env={**__import__("os").environ,
                                                                         "GRADFLOW_NO_CACHE": ""})
        assert done.returncode == 0, done.stderr
        return gf.load(tmp_path / out)

    write_text(corpus, 0)
    a = run("a")
    write_text(corpus, 1)
    b = run("b")
    b_off = run("b-off", "--no-cache")
    assert not np.array_equal(a.obs["loss"], b.obs["loss"])
    assert_same(b, b_off)


SMALL = {  # every shipped problem at a size that compiles quickly
    "cooccurrence": dict(n=12, L=3, d=8, m=8, m1=8),
    "linear-network": {},
    "least-squares": {},
    "diagonal-network": {},
    "scan-snap": {},
    "scan-snap-finite": dict(T=16, N=8),
    "signal-noise": dict(n=4, d=40, s=4, m_k=3, m_v=3, n_test=8),
    "teacher-student": dict(K=2, M=2, N=8, n_samples=16),  # a training set: data arrays enter the solve
}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_cache_on_and_off_are_bitwise_equal(name, tmp_path):
    problem = file_problem(name, tmp_path) or PROBLEMS[name](**SMALL[name])
    _cold()
    off = _run(problem)
    gf.enable_compile_cache(tmp_path / "cache")
    try:
        gradflow._compile._MEMO.clear()
        _run(problem)  # compiles and writes the cache
        gradflow._compile._MEMO.clear()
        on = _run(problem)  # reads it back
    finally:
        _cold()
    assert on.stats.compile_time < off.stats.compile_time  # the persistent cache served this one
    assert_same(on, off)
    for a, b in zip(__import__("jax").tree_util.tree_leaves(on.final), __import__("jax").tree_util.tree_leaves(off.final)):
        assert np.array_equal(a, b, equal_nan=True)
