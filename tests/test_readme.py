"""The README's Python example runs as written, and says what it claims."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

README = Path(__file__).parent.parent / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no Python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    flow, gd = namespace["flow"], namespace["gd"]
    assert flow.ok.all() and flow.obs["modes"].shape == (32, 100, 3)
    assert gd.ts[-1] == flow.ts[-1]  # the two runs share a time axis


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)[:2]
    assert "gradflow run" in commands[0] and "pip install ." in commands[0]
    assert "pytest" in commands[1] and '".[test]"' in commands[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip" + commands[1].split("&& pip", 1)[1] in ci  # CI runs exactly this
