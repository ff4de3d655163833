"""A trained agent as a folder that transformers, ``transformers serve``, vLLM or llama.cpp's
converter load as they load any model: weights (LoRA merged, or the adapter as peft saves
it), config, tokenizer or processor, a generation config with the run's stop ids, and a model
card. :func:`export_run` makes one from a run or one of its checkpoints (``mmopsd export``);
every run writes its final model with :func:`export_policy` (``run.export``)."""

from mmopsd.export.card import evaluation_table, model_card
from mmopsd.export.folder import LORA_MODES, export_policy
from mmopsd.export.run import export_run

__all__ = ["LORA_MODES", "evaluation_table", "export_policy", "export_run", "model_card"]
