"""Config: sections from YAML plus overrides, type checks, helpful errors, the flat form's
migration, the generated reference."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from mmopsd.cli import main
from mmopsd.config import (
    TaskConfig,
    TrainConfig,
    from_dict,
    is_flat,
    load_config,
    merge,
    migrate,
)
from mmopsd.config.reference import END, START, reference
from mmopsd.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optimizer: {steps: 7}\nmethod: {loss: jsd, loss_kwargs: {beta: 0.3}}\n")
    config = load_config(
        path,
        ["optimizer.lr=2e-5", "method.loss_kwargs.top_k=20", "model.lora=true",
         "optimizer.batch_size=4", "tasks.0.env=mmopsd/Sokoban-v0"],
    )  # fmt: skip
    assert config.optimizer.steps == 7 and config.method.loss == "jsd"
    assert config.method.loss_kwargs == {"beta": 0.3, "top_k": 20}
    assert config.optimizer.lr == pytest.approx(2e-5) and config.model.lora is True
    assert config.optimizer.batch_size == 4 and config.tasks[0].env == "mmopsd/Sokoban-v0"
    assert config.tasks[0].name == "Sokoban-v0"  # the default name follows the environment


def test_defaults_are_the_documented_ones():
    config = TrainConfig()
    assert config.teacher.update == "frozen" and config.model.name == "smollm2-135m"
    assert (
        config.tasks == [TaskConfig("mmopsd/KeyDoor-v0")]
        and config.tasks[0].env == "mmopsd/KeyDoor-v0"
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.stpes=3", "unknown field of optimizer 'stpes'; did you mean 'steps'"),
        ("optimzer.steps=3", "unknown config section 'optimzer'; did you mean 'optimizer'"),
        ("optimizer.steps=many", "optimizer.steps must be int"),
        ("optimizer.steps=0", "optimizer.steps must be >= 1"),
        ("model.lora=3", "model.lora must be bool"),
        ("optimizer.lr=fast", "optimizer.lr must be a number"),
        ("method.rl=both", "method.rl must be one of none, add, route"),
        ("method.teacher_share=2", r"method.teacher_share must lie in \[0, 1\]"),
        ("tasks.0.weight=0", r"tasks\[0\].weight must be > 0"),
        ("tasks.3.env=x", "tasks is a list of 1; index it 0 to 0"),
        ("optimizer=3", "optimizer must be a mapping of its fields"),
        ("optimizer.steps", "must look like key=value"),
    ],
)
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_relations_between_sections_are_checked():
    with pytest.raises(ConfigError, match="must be a multiple of method.group_size"):
        from_dict({"optimizer": {"batch_size": 6}, "method": {"group_size": 4}})
    with pytest.raises(ConfigError, match="needs teacher.update: frozen"):
        from_dict({"method": {"kl_coef": 0.1}, "teacher": {"update": "ema"}})
    with pytest.raises(ConfigError, match="tasks named twice"):
        from_dict({"tasks": [{"env": "mmopsd/KeyDoor-v0"}, {"env": "mmopsd/KeyDoor-v0"}]})
    with pytest.raises(ConfigError, match="tasks is empty"):
        from_dict({"tasks": []})
    with pytest.raises(ConfigError, match="model must be its section .*from_dict"):
        TrainConfig(model={"name": "tiny"})  # plain data goes through from_dict


@pytest.mark.parametrize(
    "key, value, new",
    [
        ("lr", 1e-4, "optimizer.lr"),
        ("steps", 3, "optimizer.steps"),
        ("env", "mmopsd/Sokoban-v0", r"tasks\[\].env"),
        ("provider", "hint", r"tasks\[\].provider"),
        ("eval_every", 5, "evaluation.every"),
        ("model", "smollm2-135m", "model.name"),
        ("method", "opsd", "method.name"),
        ("teacher", "frozen", "teacher.update"),
        ("ood", [], "evaluation.ood"),
    ],
)
def test_a_flat_key_names_its_new_place(tmp_path, key, value, new):
    message = f"config key '{key}' is now {new} .*mmopsd config migrate"
    with pytest.raises(ConfigError, match=message):
        from_dict({key: value})
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"])
    path = tmp_path / "flat.yaml"
    path.write_text(yaml.safe_dump({key: value}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_migration_keeps_every_value_and_the_old_meaning():
    flat = {
        "model": "tiny", "lr": 1e-4, "steps": 3, "provider": "reference",
        "provider_kwargs": {"kind": "next_action"}, "history": 2, "method": "grpo",
        "group_size": 4, "teacher": "frozen", "eval_split": "val", "save_rollouts": True,
        "tasks": [{"env": "mmopsd/KeyDoor-v0"},
                  {"env": "mmopsd/Sokoban-v0", "provider": "hint"}],
    }  # fmt: skip
    assert is_flat(flat)
    config = from_dict(migrate(flat))
    assert config.model.name == "tiny" and config.optimizer.lr == 1e-4
    assert config.method.name == "grpo" and config.method.group_size == 4
    assert config.evaluation.split == "val" and config.rollout.save is True
    one, two = config.tasks
    assert (one.provider, one.provider_kwargs, one.history) == (
        "reference",
        {"kind": "next_action"},
        2,
    )  # the run-wide provider, as before
    assert (two.provider, two.provider_kwargs, two.history) == ("hint", {}, 2)
    alone = from_dict(migrate({"env": "mmopsd/Sokoban-v0", "provider": "hint"})).tasks
    assert [(t.env, t.provider) for t in alone] == [("mmopsd/Sokoban-v0", "hint")]
    sectioned = migrate(flat)
    assert migrate(sectioned) == sectioned and not is_flat(sectioned)


def test_migrate_command_rewrites_a_file_that_then_loads(tmp_path, capsys):
    path = tmp_path / "old.yaml"
    path.write_text("# my run\nmodel: tiny\nenv: mmopsd/Sokoban-v0\nlr: 1.0e-4\nsteps: 3\n")
    assert main(["config", "migrate", "--in-place", str(path)]) == 0
    text = path.read_text()
    assert text.startswith("# my run\n")  # the comments that open the file are kept
    config = load_config(path)
    assert (config.model.name, config.tasks[0].env, config.optimizer.steps) == (
        "tiny",
        "mmopsd/Sokoban-v0",
        3,
    )
    assert main(["config", "migrate", "--in-place", str(path)]) == 0
    assert "has sections already" in capsys.readouterr().out


def test_every_shipped_and_committed_config_has_sections():
    files = [*ROOT.glob("mmopsd/configs/*.yaml"), *ROOT.glob("benchmarks/results/**/config.yaml")]
    assert len(files) >= 8
    for path in files:
        data = yaml.safe_load(path.read_text())
        assert not is_flat(data), path
        from_dict(data)


def test_merge_changes_a_section_field_by_field():
    base = {"optimizer": {"lr": 1e-3, "steps": 3}, "tasks": [{"env": "a"}]}
    out = merge(base, {"optimizer": {"lr": 1e-4}, "tasks": [{"env": "b"}]})
    assert out == {"optimizer": {"lr": 1e-4, "steps": 3}, "tasks": [{"env": "b"}]}
    assert base["optimizer"]["lr"] == 1e-3  # the base is left as it was


def test_the_reference_is_generated_from_the_fields():
    text = reference()
    for f in dataclasses.fields(TrainConfig):
        assert f"### `{'tasks[]' if f.name == 'tasks' else f.name}`" in text
    assert "| `lr` | float | `1.0e-05` | AdamW learning rate. |" in text
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc.split(START)[1].split(END)[0].strip() == text.strip(), (
        "docs/configuration.md is stale: python -m mmopsd.config.reference --write "
        "docs/configuration.md"
    )


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_show_prints_the_config_a_run_uses(capsys):
    assert (
        main(["config", "show", "--set", "method.name=grpo", "--set", "method.group_size=2"]) == 0
    )
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["method"]["rl"] == "add" and shown["method"]["distill_coef"] == 0.0
    assert from_dict(shown).method.name == "grpo"  # what it prints loads again


def test_every_shipped_config_loads_and_resolves():
    """Each config under mmopsd/configs loads, passes its section checks and resolves its
    method (what `mmopsd train --config` does before anything heavy)."""

    from mmopsd.training.components import prepared

    folder = Path(__file__).resolve().parents[1] / "mmopsd" / "configs"
    names = sorted(folder.glob("*.yaml"))
    assert len(names) >= 8
    for path in names:
        config = prepared(load_config(path))
        assert config.tasks and config.optimizer.steps >= 1, path.name
