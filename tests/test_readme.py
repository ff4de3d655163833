"""The README's Python snippets and the packaging layout."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_plugin_families_install_under_mmopsd():
    for name in ("mmopsd.envs", "mmopsd.privileged", "mmopsd.agents"):
        module = importlib.import_module(name)
        assert Path(module.__file__).parent.name == name.split(".")[1]


def test_readme_leads_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_environment_recipe_runs_and_passes_check_env():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "GuessEnv" in b)
    namespace: dict = {}
    exec(block.replace("mypkg/Guess-v0", "readme/Guess-v0"), namespace)
    env = gym.make("readme/Guess-v0")
    check_env(env.unwrapped, skip_render_check=True)
    _, info = env.reset(seed=0)
    secret = info["privileged"]["hint"].split()[-1]
    assert env.step(secret)[4]["success"]
