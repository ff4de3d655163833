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
