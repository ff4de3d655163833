"""Config: YAML plus overrides, type checks, helpful errors."""

from __future__ import annotations

import pytest

from mmopsd.config import TrainConfig, load_config
from mmopsd.errors import ConfigError


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\nloss: jsd\nloss_kwargs: {beta: 0.3}\n")
    config = load_config(path, ["lr=2e-5", "loss_kwargs.top_k=20", "lora=true", "batch_size=4"])
    assert config.steps == 7 and config.loss == "jsd"
    assert config.loss_kwargs == {"beta": 0.3, "top_k": 20}
    assert config.lr == pytest.approx(2e-5) and config.lora is True and config.batch_size == 4


def test_defaults_are_the_documented_ones():
    config = TrainConfig()
    assert config.teacher == "frozen" and config.model == "smollm2-135m"


@pytest.mark.parametrize(
    "override, message",
    [
        ("stpes=3", "unknown config field 'stpes'; did you mean 'steps'"),
        ("steps=many", "'steps' must be int"),
        ("steps=0", "steps must be >= 1"),
        ("lora=3", "'lora' must be bool"),
        ("lr=fast", "'lr' must be a number"),
        ("steps", "must look like key=value"),
    ],
)
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
