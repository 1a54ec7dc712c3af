"""Checkpoints: load a video classifier (Hub id or folder) and its processor, or save a tiny one for offline use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForVideoClassification, AutoVideoProcessor

from .config import ModelConfig, TrainConfig
from .errors import UserError, first_line
from .model_spec import ModelSpec, describe, fine_tuning_overrides, tiny_model, trained_stride
from .task import SingleLabel, Task


def ensure_tiny_checkpoint(config: ModelConfig, seed: int, quiet: bool = False) -> None:
    """Save a randomly initialised model + processor at `config.checkpoint` if `tiny_init` asks and it is absent."""
    folder = Path(config.checkpoint)
    if config.tiny_init is None or (folder / "config.json").is_file():
        return
    backbone, processor = tiny_model(config.tiny_init, seed)
    backbone.save_pretrained(folder)
    processor.save_pretrained(folder)
    if not quiet:
        print(f"saved a randomly initialised tiny {config.tiny_init.architecture} as checkpoint {folder} "
              "(model.tiny_init)")


def _load(what: str, ref: str, load: Any, **kwargs: Any) -> Any:
    try:
        return load(ref, **kwargs)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot load the {what} of {ref}: {first_line(err)} "
            "(model.checkpoint / --model takes a Hub id or a folder with config.json)"
        ) from None


def load_processor(ref: str) -> Any:
    """The checkpoint's video processor (an image processor config is read as one, too)."""
    return _load("processor", ref, AutoVideoProcessor.from_pretrained)


def load_for_training(ref: str, label2id: dict[str, int], train: TrainConfig | None = None,
                      task: Task = SingleLabel()) -> Any:
    """The checkpoint with a new classification head for our labels; label maps live in model.config, and
    a multi-label task's problem_type (transformers' pipeline then applies a sigmoid)."""
    if Path(ref).exists() and not (Path(ref) / "config.json").is_file():
        raise UserError(f"checkpoint folder {ref} has no config.json: check model.checkpoint")
    overrides = fine_tuning_overrides(_load("config", ref, AutoConfig.from_pretrained), train)
    if task.name != SingleLabel.name:
        overrides["problem_type"] = task.problem_type
    return _load(
        "model",
        ref,
        AutoModelForVideoClassification.from_pretrained,
        label2id=label2id,
        id2label={i: label for label, i in label2id.items()},
        ignore_mismatched_sizes=True,  # the pretrained head (if any) has other classes
        **overrides,
    )


def load_for_inference(ref: str) -> Any:
    if Path(ref).exists() and not (Path(ref) / "config.json").is_file():
        raise UserError(f"model folder {ref} has no config.json: train first (python train.py) or pass --model")
    if not Path(ref).exists() and (ref.startswith((".", "/")) or ref.count("/") > 1):
        raise UserError(f"model folder {ref} not found: train first (python train.py) or pass --model")
    model = _load("model", ref, AutoModelForVideoClassification.from_pretrained)
    return model.eval()


def load_trained(ref: str, sample_rate: int | None = None) -> tuple[Any, ModelSpec]:
    """A trained model (folder or Hub id) for evaluation and inference, and its description; the frame
    stride is the one it was trained with (model.config.sample_rate), else `sample_rate`."""
    model = load_for_inference(ref)
    return model, describe(model, load_processor(ref), trained_stride(model.config, sample_rate))
