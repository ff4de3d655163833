"""The README and the docs: the two commands first, the packaging layout, and the code blocks
of the docs run as written."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _python_block(page: str, marker: str) -> str:
    text = (ROOT / page).read_text()
    return next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if marker in b)


def test_plugin_families_install_under_mmopsd():
    for name in ("mmopsd.envs", "mmopsd.privileged", "mmopsd.agents"):
        module = importlib.import_module(name)
        assert Path(module.__file__).parent.name == name.split(".")[1]


def test_readme_leads_with_the_two_commands_and_stays_short():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert len(text.splitlines()) <= 250


def test_readme_links_point_at_files_that_exist():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)\)", text)
    assert targets
    missing = [t for t in targets if not t.startswith("http") and not (ROOT / t).exists()]
    assert not missing


def test_environment_recipe_runs_and_passes_check_env():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    namespace: dict = {}
    block = _python_block("docs/custom-environments.md", "GuessEnv")
    exec(block.replace("mypkg/Guess-v0", "readme/Guess-v0"), namespace)
    env = gym.make("readme/Guess-v0")
    check_env(env.unwrapped, skip_render_check=True)
    _, info = env.reset(seed=0)
    secret = info["privileged"]["hint"].split()[-1]
    assert env.step(secret)[4]["success"]


def test_provider_recipe_runs_and_is_checked_by_the_leak_guard():
    from mmopsd.privileged import PROVIDERS, PrivilegedLeak, build_provider, check_no_leak

    from mmopsd.types import user

    exec(_python_block("docs/providers/index.md", "class Shout"), {})
    try:
        shout = build_provider("shout")
        ctx = shout([user("Which door?")], {"hint": "the blue door"})
        assert ctx.messages[-1].text.endswith("THE BLUE DOOR")
        assert list(shout.keys) == ["hint"] and shout.static
        with pytest.raises(PrivilegedLeak):
            check_no_leak(
                [user("Which door? the blue door")], {"hint": "the blue door"}, keys=shout.keys
            )
    finally:
        PROVIDERS._items.pop("shout", None)


def test_the_home_page_and_the_readme_show_the_same_python_example():
    assert _python_block("README.md", "load_config") == _python_block(
        "docs/index.md", "load_config"
    )


@pytest.mark.slow
def test_the_python_example_runs_on_the_packaged_model(tmp_path, monkeypatch):
    """The README's Python example as written, shortened to one step of 4 episodes."""
    monkeypatch.chdir(ROOT)
    block = _python_block("README.md", "load_config")
    short = '"optimizer.steps=1", "optimizer.batch_size=4", "optimizer.micro_batch_size=4", "evaluation.episodes=4", "evaluation.every=0"'
    block = block.replace('"optimizer.steps=20"', short).replace(
        "runs/keydoor-python", str(tmp_path / "run")
    )
    exec(block, {})
    assert (tmp_path / "run" / "summary.json").is_file()
