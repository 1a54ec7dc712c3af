"""What trains: the whole model, only its head (train.freeze: backbone), or LoRA adapters (train.lora).

A frozen backbone keeps its weights and runs in eval mode (no dropout or stochastic depth), so a probe
reads fixed features; no activations of it are kept for a backward pass. LoRA goes through peft: the
adapters wrap the backbone's attention projections (model_spec.LORA_TARGETS) and the head trains in full
(peft's modules_to_save). The output folder holds the merged model (plain transformers, the stock pipeline
and ONNX export load it) and the adapter in `adapter/` (peft loads it over the base checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.config import LoraOptions, TrainConfig
from ..core.errors import UserError
from ..core.run_folder import ADAPTER
from .model_spec import LORA_TARGETS, backbone, head_modules


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, all) parameters."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def describe_trainable(model: Any, train: TrainConfig) -> str:
    """One line: what trains and how many parameters that is."""
    trainable, total = parameter_counts(model)
    what = ("the head only (train.freeze: backbone)" if train.freeze == "backbone"
            else f"LoRA adapters (r {train.lora.r}) and the head" if train.lora else "all parameters")
    return f"trains {what}: {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%)"


def freeze_backbone(model: Any) -> None:
    """Only the head's parameters (head_modules) keep requires_grad."""
    for parameter in backbone(model).parameters():
        parameter.requires_grad_(False)


def lora_config(model: Any, options: LoraOptions) -> Any:
    from peft import LoraConfig

    targets = options.target_modules
    if targets is None:
        if model.config.model_type not in LORA_TARGETS:
            raise UserError(f"train.lora: no default target_modules for {model.config.model_type}: set "
                            "train.lora.target_modules (e.g. [query, value])")
        targets = LORA_TARGETS[model.config.model_type]
    return LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout, target_modules=targets,
                      modules_to_save=head_modules(model))


def add_lora(model: Any, options: LoraOptions) -> Any:
    """The model wrapped in peft's LoRA adapters; a target that names no module is a one-line error."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, lora_config(model, options))
    except ValueError as err:
        raise UserError(f"train.lora.target_modules: {str(err).splitlines()[0]} (module names of "
                        f"{model.config.model_type}: see model.named_modules())") from None


def make_trainable(model: Any, train: TrainConfig) -> Any:
    """The model as train.freeze / train.lora say it trains (LoRA: wrapped in a peft model)."""
    if train.freeze == "backbone":
        freeze_backbone(model)
    elif train.lora is not None:
        model = add_lora(model, train.lora)
    return model


def load_adapter(model: Any, folder: str | Path) -> Any:
    """A LoRA checkpoint's adapter (peft's adapter_model.safetensors in `folder`) over `model`, the base
    loaded with a new head: the head's trained weights come with the adapter (modules_to_save)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder))


def save_merged(peft_model: Any, out: Path) -> Any:
    """Write the adapter to out/adapter and return the merged plain transformers model."""
    peft_model.save_pretrained(out / ADAPTER)
    return peft_model.merge_and_unload()
