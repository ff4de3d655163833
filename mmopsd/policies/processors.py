"""Build Qwen-VL processors that work without a video processor (no torchvision needed)."""

from __future__ import annotations

from typing import Any


def image_only_processor(
    processor_cls: type, image_processor: Any, tokenizer: Any, chat_template: str | None = None
) -> Any:
    """Instantiate ``processor_cls`` with ``video_processor=None``.

    transformers' processor class check rejects ``None`` for the video processor (and
    transformers' video processors need torchvision), so a thin subclass accepts it.
    Videos then cannot be passed; future frames enter as sequences of images.
    """

    class ImageOnly(processor_cls):  # type: ignore[misc, valid-type]
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
            if argument is None and argument_name == "video_processor":
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    ImageOnly.__name__ = ImageOnly.__qualname__ = processor_cls.__name__
    return ImageOnly(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=None,
        chat_template=chat_template,
    )
