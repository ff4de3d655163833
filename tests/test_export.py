"""Exported models: a run's final model and ``mmopsd export`` of a checkpoint load with
transformers' own classes and score exactly as the checkpoint does; LoRA merged or as an
adapter; a vision model with its processor; the model card; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmopsd.cli import main
from mmopsd.config import from_dict, load_config
from mmopsd.export import export_policy
from mmopsd.policies.loading import load_policy
from mmopsd.testing import tiny_text_policy, tiny_vl_policy
from mmopsd.training import checkpoint
from mmopsd.training.components import student
from mmopsd.training.loop import train

IDS = torch.tensor([[5, 17, 42, 7, 99, 3, 11, 64]])


def _saved_tiny(folder: Path) -> Path:
    policy = tiny_text_policy()
    policy.model.save_pretrained(folder)
    policy.tokenizer.save_pretrained(folder)
    return folder


def _run(tmp_path: Path, **model) -> Path:
    """One training step of a tiny model loaded by its folder's name, as a user's run is."""
    name = str(_saved_tiny(tmp_path / "base"))
    config = from_dict({
        "model": {"name": name, "dtype": "float32", **model},
        "rollout": {"max_turns": 2, "max_new_tokens": 4},
        "optimizer": {"steps": 1, "batch_size": 2, "lr": 1e-2},
        "evaluation": {"episodes": 2},
        "run": {"out_dir": str(tmp_path / "run")},
    })  # fmt: skip
    train(config, progress=False)
    return tmp_path / "run"


def _checkpoint_logits(run: Path) -> torch.Tensor:
    """Logits of the run's final checkpoint, loaded as ``mmopsd eval --checkpoint`` does."""
    config = load_config(run / "config.yaml")
    policy = student(config.model, load_policy(config.model.name, dtype="float32"))
    checkpoint.load_weights(checkpoint.latest(run / "checkpoints"), policy.model)
    with torch.no_grad():
        return policy.model(IDS).logits


def _logits(folder: Path) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    with torch.no_grad():
        return model(IDS).logits


def test_a_run_ends_with_a_model_transformers_loads_scoring_as_its_checkpoint(tmp_path):
    run = _run(tmp_path)
    want = _checkpoint_logits(run)
    assert not torch.equal(want, _logits(tmp_path / "base"))  # training changed the model
    assert torch.equal(_logits(run / "model"), want)
    assert main(["export", str(run), str(tmp_path / "exported")]) == 0
    assert torch.equal(_logits(tmp_path / "exported"), want)
    from transformers import AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(tmp_path / "exported", local_files_only=True)
    gen = GenerationConfig.from_pretrained(tmp_path / "exported", local_files_only=True)
    assert gen.eos_token_id == tok.eos_token_id and gen.pad_token_id == tok.pad_token_id
    card = (tmp_path / "exported" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-generation\n")
    for said in ("`custom` (loss `forward_kl`", "`mmopsd/KeyDoor-v0`", "`hint`",
                 "student after training", "a local model (`base`)", "1 step of 2 episodes",
                 "mmopsd train --config mmopsd_config.yaml", "After step 1."):  # fmt: skip
        assert said in card, said
    config = load_config(tmp_path / "exported" / "mmopsd_config.yaml")
    assert config.optimizer.steps == 1 and config.method.loss == "forward_kl"
    assert str(tmp_path) not in card  # no machine path


def test_a_checkpoint_exports_and_the_card_names_the_packaged_base(tmp_path):
    from mmopsd.export import model_card

    run = _run(tmp_path)
    step = checkpoint.latest(run / "checkpoints")
    assert main(["export", str(step), str(tmp_path / "out")]) == 0
    assert torch.equal(_logits(tmp_path / "out"), _checkpoint_logits(run))
    config = from_dict({"model": {"name": "smollm2-135m"}})
    card = model_card(config, base_id="HuggingFaceTB/SmolLM2-135M-Instruct", step=3,
                      evaluation=None)  # fmt: skip
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct\n" in card


def test_lora_exports_merged_or_as_an_adapter_and_scores_as_its_checkpoint(tmp_path):
    pytest.importorskip("peft")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = _run(tmp_path, lora=True, lora_r=4, lora_targets=["q_proj", "v_proj"])
    want = _checkpoint_logits(run)
    merged = _logits(run / "model")  # a plain model: the adapters folded in
    assert torch.allclose(merged, want, atol=1e-5, rtol=1e-5)
    assert not (run / "model" / "adapter_config.json").exists()
    assert main(["export", str(run), str(tmp_path / "adapter"), "--lora", "adapter"]) == 0
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base", local_files_only=True)
    with torch.no_grad():
        got = PeftModel.from_pretrained(base, tmp_path / "adapter")(IDS).logits
    assert torch.equal(got, want)
    assert "library_name: peft" in (tmp_path / "adapter" / "README.md").read_text()


def test_exporting_leaves_the_trained_lora_model_as_it_was(tmp_path):
    pytest.importorskip("peft")
    from mmopsd.training.lora import apply_lora

    policy = tiny_text_policy()
    policy.model = apply_lora(policy.model, r=4, alpha=8, targets=["q_proj"])
    for p in policy.model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p)  # adapters that change the output
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    export_policy(policy, tmp_path / "m", card="card")
    after = policy.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():
        assert torch.allclose(_logits(tmp_path / "m"), policy.model(IDS).logits, atol=1e-5)


def test_a_vision_model_exports_with_its_processor(tmp_path):
    from transformers import AutoModelForImageTextToText

    policy = tiny_vl_policy("qwen2_vl")
    export_policy(policy, tmp_path / "vl", card="card")
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "vl", local_files_only=True)
    with torch.no_grad():
        assert torch.equal(model(IDS).logits, policy.model(IDS).logits)
    assert (tmp_path / "vl" / "preprocessor_config.json").is_file()
    loaded = load_policy(str(tmp_path / "vl"), dtype="float32")
    assert loaded.sees_images and loaded.processor.chat_template == policy.processor.chat_template


def test_bad_exports_are_one_line_and_write_nothing(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("keep")
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "taken")]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "taken" / "x").read_text() == "keep"
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_an_interrupted_export_leaves_no_folder(tmp_path, monkeypatch):
    policy = tiny_text_policy()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(policy.tokenizer), "save_pretrained", fail)
    with pytest.raises(OSError, match="disk full"):
        export_policy(policy, tmp_path / "m", card="card")
    assert list(tmp_path.iterdir()) == []


def test_config_json_names_no_local_path(tmp_path):
    run = _run(tmp_path)
    text = (run / "model" / "config.json").read_text()
    assert str(tmp_path) not in text, json.loads(text).get("_name_or_path")


def test_a_sharded_lora_models_tensors_merge_as_peft_merges_them():
    """The merge used for a sharded model's gathered tensors equals peft's own
    ``merge_and_unload``, name for name."""
    pytest.importorskip("peft")
    import copy

    from mmopsd.export.folder import merged_lora
    from mmopsd.training.lora import apply_lora

    policy = tiny_text_policy()
    model = apply_lora(policy.model, r=4, alpha=8, targets=["q_proj", "v_proj"])
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p)
    mine = merged_lora(model, model.state_dict())
    theirs = copy.deepcopy(model).merge_and_unload().state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.allclose(mine[k], theirs[k], atol=1e-6) for k in theirs)
