"""Checkpoints: load a VideoMAE (Hub id or folder) and its processor, or save a tiny one for offline use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoModelForVideoClassification,
    AutoVideoProcessor,
    VideoMAEConfig,
    VideoMAEModel,
    VideoMAEVideoProcessor,
)

from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

from .config import ModelConfig
from .errors import UserError


def ensure_tiny_checkpoint(config: ModelConfig, seed: int, quiet: bool = False) -> None:
    """Save a randomly initialised VideoMAE + processor at `config.checkpoint` if `tiny_init` asks and it is absent."""
    folder = Path(config.checkpoint)
    if config.tiny_init is None or (folder / "config.json").is_file():
        return
    tiny = config.tiny_init
    torch.manual_seed(seed)
    backbone = VideoMAEModel(
        VideoMAEConfig(
            image_size=tiny.image_size,
            patch_size=tiny.patch_size,
            num_frames=tiny.num_frames,
            tubelet_size=tiny.tubelet_size,
            hidden_size=tiny.hidden_size,
            num_hidden_layers=tiny.num_hidden_layers,
            num_attention_heads=tiny.num_attention_heads,
            intermediate_size=tiny.intermediate_size,
            use_mean_pooling=True,
        )
    )
    backbone.save_pretrained(folder)
    VideoMAEVideoProcessor(
        size={"shortest_edge": tiny.image_size},
        crop_size={"height": tiny.image_size, "width": tiny.image_size},
    ).save_pretrained(folder)
    if not quiet:
        print(f"saved a randomly initialised tiny VideoMAE as checkpoint {folder} (model.tiny_init)")


def save_image_processor(video_processor: Any, model_type: str, folder: Path) -> None:
    """Write preprocessor_config.json beside video_preprocessor_config.json: the same constants as the
    image processor of `model_type`, which the guide's code (VideoMAEImageProcessor, AutoImageProcessor),
    the Hub's VideoMAE checkpoints and transformers 4.x read. Model types without one get none."""
    names = IMAGE_PROCESSOR_MAPPING_NAMES.get(model_type) or {}
    name = names.get("torchvision") if isinstance(names, dict) else names
    if not name:
        return
    image_processor_class = getattr(transformers, name)
    accepted = set(image_processor_class().to_dict())
    settings = {k: v for k, v in video_processor.to_dict().items() if k in accepted and not k.endswith("_type")}
    image_processor_class(**settings).save_pretrained(folder)


def _load(what: str, ref: str, load: Any, **kwargs: Any) -> Any:
    try:
        return load(ref, **kwargs)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"cannot load the {what} of {ref}: {first_line} "
            "(model.checkpoint / --model takes a Hub id or a folder with config.json)"
        ) from None


def load_processor(ref: str) -> Any:
    """The checkpoint's video processor (an image processor config is read as one, too)."""
    return _load("processor", ref, AutoVideoProcessor.from_pretrained)


def load_for_training(ref: str, label2id: dict[str, int]) -> Any:
    """The checkpoint with a new classification head for our labels; label maps live in model.config."""
    if Path(ref).exists() and not (Path(ref) / "config.json").is_file():
        raise UserError(f"checkpoint folder {ref} has no config.json: check model.checkpoint")
    return _load(
        "model",
        ref,
        AutoModelForVideoClassification.from_pretrained,
        label2id=label2id,
        id2label={i: label for label, i in label2id.items()},
        ignore_mismatched_sizes=True,  # the pretrained head (if any) has other classes
    )


def load_for_inference(ref: str) -> Any:
    if Path(ref).exists() and not (Path(ref) / "config.json").is_file():
        raise UserError(f"model folder {ref} has no config.json: train first (python train.py) or pass --model")
    if not Path(ref).exists() and (ref.startswith((".", "/")) or ref.count("/") > 1):
        raise UserError(f"model folder {ref} not found: train first (python train.py) or pass --model")
    model = _load("model", ref, AutoModelForVideoClassification.from_pretrained)
    return model.eval()
