"""Checkpoints: load a video classifier (Hub id or folder) and its processor, or save a tiny one for offline use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification, AutoVideoProcessor

from ..core.config import ModelConfig, TrainConfig
from ..core.errors import UserError, first_line
from ..core.hub import hub_call
from ..core.preflight import checkpoint, is_hub_id
from ..core.task import SingleLabel, Task
from . import unknown
from .folding import FOLDED, TEMPERATURE
from .heads import AttentiveProbeConfig, attentive_probe
from .model_spec import ATTENTIVE_HEADS, ModelSpec, describe, fine_tuning_overrides, tiny_model, trained_stride
from .precision import AGREEMENT


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
    """`load(ref, **kwargs)`; a Hub id's download failures as core/hub.py's one line, any other failure to
    load as one line naming `what`, `ref` and the setting."""
    try:
        if Path(ref).expanduser().exists():
            return load(ref, **kwargs)
        return hub_call(lambda: load(ref, **kwargs), checkpoint(ref, what))
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot load the {what} of {ref}: {first_line(err)} "
            "(model.checkpoint / --model takes a Hub id or a folder with config.json)"
        ) from None


def load_processor(ref: str, revision: str | None = None) -> Any:
    """The checkpoint's video processor (an image processor config is read as one, too), at `revision`
    (model.revision) of a Hub checkpoint."""
    return _load("processor", ref, AutoVideoProcessor.from_pretrained, revision=revision)


def load_for_training(ref: str, label2id: dict[str, int], train: TrainConfig | None = None,
                      task: Task = SingleLabel(), model: ModelConfig | None = None, revision: str | None = None) -> Any:
    """The checkpoint (at `revision` of a Hub repo) with a new classification head for our labels, the
    one model.head names; label maps live in model.config, and a multi-label task's problem_type
    (transformers' pipeline then applies a sigmoid). A checkpoint of ours with its head (a resumed run's)
    loads as it was saved."""
    if Path(ref).exists() and not (Path(ref) / "config.json").is_file():
        raise UserError(f"checkpoint folder {ref} has no config.json: check model.checkpoint")
    checkpoint_config = _load("config", ref, AutoConfig.from_pretrained, revision=revision)
    overrides = {**forget_measured(checkpoint_config), **fine_tuning_overrides(checkpoint_config, train)}
    if task.name != SingleLabel.name:
        overrides["problem_type"] = task.problem_type
    labels = {"label2id": label2id, "id2label": {i: label for label, i in label2id.items()}}
    head = model.head if model is not None else "auto"
    own_attentive = checkpoint_config.model_type in ATTENTIVE_HEADS
    if head == "linear" and own_attentive:
        raise UserError(f"model.head: linear: transformers' {checkpoint_config.model_type} has an attentive "
                        "pooler for its head, not a linear one: set model.head: auto")
    if head == "attentive" and not own_attentive and checkpoint_config.model_type != AttentiveProbeConfig.model_type:
        backbone = _load("model", ref, AutoModel.from_pretrained, revision=revision, **overrides)
        if backbone.main_input_name != "pixel_values":
            raise UserError(f"model.head: attentive is not available for {checkpoint_config.model_type}: "
                            "set model.head: auto")
        problem = {"problem_type": overrides["problem_type"]} if "problem_type" in overrides else {}
        return attentive_probe(backbone, model.attentive_layers, **labels, **problem)
    return _load(
        "model",
        ref,
        AutoModelForVideoClassification.from_pretrained,
        revision=revision,
        ignore_mismatched_sizes=True,  # the pretrained head (if any) has other classes
        **labels,
        **overrides,
    )


def forget_measured(checkpoint_config: Any) -> dict[str, None]:
    """What a trained checkpoint's config.json says about that model's head and val set (a temperature or
    thresholds folded in, the unknown threshold, its background class, bf16's agreement), cleared for a new
    fine-tuning: the new run measures and folds its own, and would otherwise take the old ones as done."""
    keys = (TEMPERATURE, FOLDED, "label_thresholds", AGREEMENT, unknown.THRESHOLD, unknown.ACCEPT, unknown.BACKGROUND)
    return {key: None for key in keys if getattr(checkpoint_config, key, None) is not None}


def load_for_inference(ref: str) -> Any:
    if Path(ref).exists() and not (Path(ref) / "config.json").is_file():
        raise UserError(f"model folder {ref} has no config.json: train first (python train.py) or pass --model")
    if not Path(ref).exists() and not is_hub_id(ref):
        raise UserError(f"model folder {ref} not found: train first (python train.py) or pass --model")
    model = _load("model", ref, AutoModelForVideoClassification.from_pretrained)
    return model.eval()


def load_trained(ref: str, sample_rate: int | None = None) -> tuple[Any, ModelSpec]:
    """A trained model (folder or Hub id) for evaluation and inference, and its description; the frame
    stride is the one it was trained with (model.config.sample_rate), else `sample_rate`."""
    model = load_for_inference(ref)
    return model, describe(model, load_processor(ref), trained_stride(model.config, sample_rate))
