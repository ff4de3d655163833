"""``export_run``: a run directory or one of its checkpoints as a model folder."""

from __future__ import annotations

from pathlib import Path

from mmopsd.config import TrainConfig
from mmopsd.errors import ConfigError
from mmopsd.export.card import evaluation_table, model_card
from mmopsd.export.folder import check_target, export_policy
from mmopsd.policies.packaged import hub_id


def export_run(source: Path, out: Path, *, lora: str = "merge", overwrite: bool = False) -> Path:
    """Export ``source`` (a run directory: its newest checkpoint; or a checkpoint) to ``out``:
    the run's model loaded as its config names it, the checkpoint's weights put in."""
    from mmopsd.policies.loading import load_policy
    from mmopsd.training import checkpoint
    from mmopsd.training.components import student

    source, out = Path(source), Path(out)
    check_target(out, overwrite)  # before anything loads
    found = find_checkpoint(source)
    run_dir, config = run_of(found)
    step = checkpoint.step_of(found)
    policy = student(config.model, load_policy(config.model.name, dtype=_dtype(config)))
    checkpoint.load_weights(found, policy.model)
    base = hub_id(config.model.name)
    card = model_card(
        config, base_id=base, step=step, evaluation=evaluation_table(run_dir, step),
        vision=policy.sees_images, lora=lora,
    )  # fmt: skip
    from mmopsd.config.writing import dump

    return export_policy(
        policy, out, card=card, config_yaml=dump(config.to_dict()), lora=lora, base_id=base,
        overwrite=overwrite,
    )  # fmt: skip


def find_checkpoint(source: Path) -> Path:
    """The checkpoint ``source`` names: itself, or a run's newest sound one."""
    from mmopsd.training import checkpoint, resume

    if not source.exists():
        raise ConfigError(f"{source} does not exist; name a run directory or a checkpoint")
    if (source / "trainer_state.json").is_file():
        checkpoint.verify(source)
        return source
    found = resume.newest_sound(source / "checkpoints") or resume.newest_sound(source)
    if found is None:
        raise ConfigError(
            f"{source} holds no checkpoint; name a run directory (with checkpoints/) or one "
            "of its checkpoints (checkpoints/step-N)"
        )
    return found


def run_of(found: Path) -> tuple[Path, TrainConfig]:
    """The run directory a checkpoint belongs to and its config (a run written before the
    config had sections is migrated)."""
    from mmopsd.config import run_config_near
    from mmopsd.training.components import prepared

    near = run_config_near(found)
    if near is not None:
        return near[0], prepared(near[1])
    raise ConfigError(
        f"no config.yaml beside {found} or in the two folders above it: the run's config says "
        "which model the checkpoint's weights belong to"
    )


def _dtype(config: TrainConfig) -> str:
    """The run's weights' dtype (mixed precision keeps float32 weights)."""
    return "float32" if config.model.dtype == "bf16-mixed" else config.model.dtype
