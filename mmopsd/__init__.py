"""mmopsd: multimodal and agentic on-policy self-distillation."""

__version__ = "0.1.0"
