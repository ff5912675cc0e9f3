"""The README's Python example runs as written and says what it claims, the sweep example
of the docs runs and compiles once, and every `gradflow` command line the README and the
docs' command-line page show runs (shortened: fewer seeds, smaller models)."""

import contextlib
import io
import re
import shlex
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

README = Path(__file__).parent.parent / "README.md"
SWEEPS = README.parent / "docs" / "concepts" / "compile-cache.md"  # the sweep example
COMMAND_LINE = README.parent / "docs" / "concepts" / "command-line.md"  # every command line, with the README's


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no Python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    flow, gd = namespace["flow"], namespace["gd"]
    assert flow.ok.all() and flow.obs["modes"].shape == (32, 100, 3)
    assert gd.ts[-1] == flow.ts[-1]  # the two runs share a time axis


def test_docs_sweep_example_runs_and_compiles_once():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    sweeps = re.findall(r"```python\n(.*?)```", SWEEPS.read_text(), flags=re.S)
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    exec(compile(sweeps[0], str(SWEEPS), "exec"), namespace)
    for name, points in (("by_t1", 2), ("by_scale", 3), ("by_lr", 3)):
        runs = namespace[name]
        assert len(runs) == points
        assert [float(r.stats.compile_time) for r in runs[1:]] == [0.0] * (points - 1), name  # one compile
    assert [r.ts[-1] for r in namespace["by_lr"]] == [10.0, 10.0, 10.0]


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)[:2]
    assert "gradflow run" in commands[0] and "pip install ." in commands[0]
    assert "pytest" in commands[1] and '".[test]"' in commands[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip" + commands[1].split("&& pip", 1)[1] in ci  # CI runs exactly this


# --- Every `gradflow ...` command line of the README runs -----------------------------------

# Options added to a README command line where it gives none of its own, so that it runs in
# seconds: fewer seeds, a smaller model, no progress bar. What the line itself says is kept.
SMALLER = {
    "run": ["--seeds", "2", "--save-n", "20", "--no-progress"],
    "bench accuracy": ["--seeds", "1", "--t1", "2", "--steps", "20,40", "--numruns", "1"],
}
SMALLER_PROBLEM = {  # by problem: a smaller model (by its own fields) or a shorter horizon
    "cooccurrence": ["--t1", "30", "--set", "m=16", "--set", "m1=32"],
    "least-squares": [],
    "signal-noise": ["--set", "d=200", "--set", "n_test=100"],
}


def readme_commands() -> list[list[str]]:
    """Every `gradflow ...` command of the bash blocks of README.md and of the docs'
    command-line page, as argv (comments dropped), each once, in order."""
    commands = []
    text = README.read_text() + "\n" + COMMAND_LINE.read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for part in line.split("#", 1)[0].split("&&"):
                words = shlex.split(part)
                if words[:1] == ["gradflow"] and words[1:] not in commands:
                    commands.append(words[1:])
    return commands


def _given(argv, option, field=None):
    """Whether `argv` gives `option` (for --set: sets `field`)."""
    if field is None:
        return option in argv
    return any(a == "--set" and b.split("=", 1)[0] == field for a, b in zip(argv, argv[1:]))


def _add_missing(argv, extra):
    """`extra` options (pairs, or flags) that `argv` does not already give."""
    out, i = list(argv), 0
    while i < len(extra):
        option = extra[i]
        takes_value = i + 1 < len(extra) and not extra[i + 1].startswith("--")
        value = extra[i + 1] if takes_value else None
        field = value.split("=", 1)[0] if option == "--set" else None
        if not _given(argv, option, field):
            out += [option, value] if takes_value else [option]
        i += 2 if takes_value else 1
    return out


def shortened(argv, tmp) -> list[str]:
    """A README command line as the test runs it: run directories under `tmp`, and the
    SMALLER options it does not give itself."""
    argv = [str(tmp / a) if a.startswith("runs/") else a for a in argv]
    if argv[:1] == ["run"] and "--resume" not in argv:
        problem = argv[1] if len(argv) > 1 and not argv[1].startswith("--") else "cooccurrence"
        argv = _add_missing(argv, SMALLER["run"] + SMALLER_PROBLEM[problem])
        if "--out" not in argv:
            argv += ["--out", str(tmp / "runs" / f"{problem}-default-out")]
    if argv[:2] == ["bench", "accuracy"]:
        argv = _add_missing(argv, SMALLER["bench accuracy"]) + ["--out", str(tmp / "runs" / "accuracy")]
    return argv


def _interrupted_run(directory):
    """What `gradflow run --resume DIR` expects in DIR: a (shortened) default run killed
    after its first checkpoint (20 of its ~40 steps per seed)."""
    from gradflow import _checkpoint, cli

    write = _checkpoint.write

    def interrupted(*args, **kwargs):
        write(*args, **kwargs)
        raise KeyboardInterrupt  # as if killed right after the checkpoint was written

    argv = shortened(["run", "--checkpoint-every", "20", "--out", str(directory)], directory.parent)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_checkpoint, "write", interrupted)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert cli.main(argv) == 130
    assert (directory / "command.json").exists() and not (directory / "run.json").exists()


COMMANDS = readme_commands()


@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory):
    """Each README command line, shortened, run once in README order: its argv, exit code,
    stdout and stderr, by the line as the README writes it."""
    from gradflow import cli

    tmp = tmp_path_factory.mktemp("readme")
    results = {}
    for argv in COMMANDS:
        if "--resume" in argv:
            _interrupted_run(tmp / argv[argv.index("--resume") + 1])
        run = shortened(argv, tmp)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(run)
        results[shlex.join(argv)] = (run, code, out.getvalue(), err.getvalue())
    return results


def test_readme_lists_its_commands():
    lines = [shlex.join(argv) for argv in COMMANDS]
    assert "run" in lines and "problems" in lines  # the first command's `gradflow run`, and the list
    assert any(line.startswith("run --resume") for line in lines)
    assert all(argv[0] in ("run", "problems", "plot", "bench") for argv in COMMANDS), lines


def test_readme_command_runs(readme_runs):
    # One test for every line: as a parametrized test, pytest-xdist gave lines to both workers and
    # the fixture that runs them all (~60 s) was built in each (measured twice per suite run).
    assert set(readme_runs) == {shlex.join(argv) for argv in COMMANDS}
    for line in readme_runs:
        _check_command(*readme_runs[line])


def _check_command(argv, code, out, err):
    assert code == 0, (argv, err[-2000:])
    if argv[0] == "run":
        directory = Path(argv[argv.index("--out") + 1] if "--out" in argv else argv[argv.index("--resume") + 1])
        assert (directory / "run.json").exists() and "saved to" in out, (argv, out[-2000:])
        assert "ok" in (directory / "summary.txt").read_text()
    if argv[0] == "plot":
        assert out.strip() and all(Path(p).exists() for p in out.split()), out
    if argv[0] == "problems":
        assert "cooccurrence (default)" in out
    if "kvaerno5" in argv and "--devices" not in argv:
        # The default spreads seeds over one device per core; an implicit solver cannot
        # (lineax under shard_map), so the CLI runs it on one device and says so.
        assert "is implicit: running on one device" in out, out[-2000:]
