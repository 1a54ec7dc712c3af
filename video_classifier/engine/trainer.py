"""The Trainer a run uses: its loss and optimizer with the fine-tuning options (VideoTrainer), its
arguments (training_arguments), the clip metrics it reports, class-balanced sampling, the callback that stops a
run whose videos do not decode, and the checks of train.report_to."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments

from ..core.config import Config, TrainConfig
from ..core.errors import UserError
from ..core.run_folder import CARD
from ..core.task import SingleLabel, Task, class_counts
from ..data.clips import DecodeFailures
from ..data.streaming import per_process_loader
from ..model.model_spec import ModelSpec, backbone, layer_depths


class ClipMetrics:
    """The Trainer's compute_metrics: the task's clip-level metrics of its logits (picklable)."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        return self.spec.task.clip_metrics(ModelSpec.class_scores(prediction.predictions), prediction.label_ids)


# A run stops when more than this share of the training videos does not decode
MAX_FAILING_SHARE = 0.1


class StopOnUnreadableData(TrainerCallback):
    """Stops training with a one-line error once too many training videos fail to decode; until then,
    the dataset replaces their clips (the failures file is written by the DataLoader workers)."""

    def __init__(self, path: Path, videos: int):
        self.path, self.videos, self.size = path, videos, 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.path.is_file() or self.path.stat().st_size == self.size:
            return
        self.size = self.path.stat().st_size
        failing = DecodeFailures.summary(self.path).get("train", {}).get("videos", [])
        if len(failing) > max(1, MAX_FAILING_SHARE * self.videos):
            raise UserError(f"{len(failing)} of {self.videos} training videos do not decode (listed in {self.path}): "
                            "check the data folder, or prepare it again")


class BalancedSampler(torch.utils.data.Sampler):
    """train.sampler: balanced. An epoch of len(weights) draws with replacement, each video drawn with
    probability proportional to its weight (sample_weights: every class drawn as often). The draws
    are seeded by (seed, epoch), so every process of a data-parallel run makes the same sequence and the
    Trainer's accelerate hands each its own share of the batches; a resumed run draws the same epoch again
    (the Trainer's set_epoch reaches the sampler through accelerate at each epoch's start)."""

    def __init__(self, weights: torch.Tensor, seed: int):
        self.weights, self.seed, self.epoch = weights.double(), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Any:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1  # the next epoch differs even where set_epoch is never called
        return iter(torch.multinomial(self.weights, len(self.weights), True, generator=generator).tolist())


def sample_weights(task: Task, labels: list[str], label2id: dict[str, int]) -> torch.Tensor:
    """A weight per training video for class-balanced sampling: 1 / (videos of its class); multi-label:
    the mean of that over its labels (the videos without a label weigh as one class of their own)."""
    counts = class_counts(task, labels, label2id)
    ids = [task.label_ids(label, label2id) for label in labels]
    unlabelled = max(1, sum(not i for i in ids))
    return torch.tensor([sum(1 / counts[c] for c in i) / len(i) if i else 1 / unlabelled for i in ids])


class VideoTrainer(Trainer):
    """The Trainer, with the loss and optimizer of the fine-tuning options (train.label_smoothing,
    mixup_alpha, cutmix_alpha, layer_decay, class_weights, sampler). With all of them off it computes
    what the model's own loss and the Trainer's own AdamW do."""

    def __init__(self, *args: Any, spec: ModelSpec, train_options: TrainConfig,
                 class_weights: torch.Tensor | None = None, sample_weights: torch.Tensor | None = None,
                 cached_features: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cached_features = cached_features  # batches hold the backbone's cached tokens, not pixels
        self.spec, self.options = spec, train_options
        self.class_weights, self.sample_weights = class_weights, sample_weights
        self.loss_is_scaled_for_ga = False  # compute_loss returns the batch mean, as torch's cross_entropy does
        classes = len(spec.id2label)
        mixers = []
        if train_options.mixup_alpha > 0:
            mixers.append(v2.MixUp(alpha=train_options.mixup_alpha, num_classes=classes))
        if train_options.cutmix_alpha > 0:
            mixers.append(v2.CutMix(alpha=train_options.cutmix_alpha, num_classes=classes))
        self.mix = v2.RandomChoice(mixers) if mixers else None  # one of them per batch

    def get_train_dataloader(self) -> Any:
        if getattr(self.train_dataset, "splits_by_process", False):  # a stream that splits itself by process
            if self.sample_weights is not None:
                raise UserError("train.sampler: balanced draws videos by index, which a stream has not: "
                                "set train.sampler: random, or train.class_weights: balanced")

            return per_process_loader(self.train_dataset, self.args, self._train_batch_size, self.data_collator)
        return super().get_train_dataloader()

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        # the batch came to the device as uint8 (the Trainer moves it): normalised here, once per batch
        clips = inputs[self.spec.input_key]
        clips, targets = (clips if self.cached_features else self.spec.pixels(clips)), labels
        if model.training and self.mix is not None:
            # (B, T, C, H, W) as a video batch: one mixing weight (or box) per clip pair, for every frame
            mixed, targets = self.mix(tv_tensors.Video(clips), labels)
            clips = mixed.as_subclass(torch.Tensor)
        if self.options.freeze == "backbone" and model.training:
            backbone(self.accelerator.unwrap_model(model)).eval()  # fixed features: no dropout in the probe's input
        outputs = model(**self.spec.inputs(clips))
        logits = ModelSpec.class_scores(outputs.logits).float()
        smoothing = self.options.label_smoothing if model.training else 0.0
        weight = None if self.class_weights is None or not model.training else self.class_weights.to(logits.device)
        loss = self.spec.task.loss(logits, targets, label_smoothing=smoothing, weight=weight)
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        if self.sample_weights is None:
            return super()._get_train_sampler(train_dataset)
        return BalancedSampler(self.sample_weights, self.args.seed)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Keep the output folder's README.md (model_card.py's) when pushing; the Trainer's own card
        would replace it."""
        if not (Path(self.args.output_dir) / CARD).is_file():
            super().create_model_card(*args, **kwargs)

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """The Trainer's optimizer; with layer decay, each layer's parameters get learning rate x
        decay ^ (depth of the top - depth of the layer), the head the full rate."""
        if self.options.layer_decay == 1.0 or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        depths, top = layer_depths(model)
        decayed = set(self.get_decay_parameter_names(model))
        groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                groups.setdefault((depths[name], name in decayed), []).append(parameter)
        optimizer_class, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = optimizer_class([
            {"params": params, "lr": self.args.learning_rate * self.options.layer_decay ** (top - depth),
             "weight_decay": self.args.weight_decay if decay else 0.0}
            for (depth, decay), params in sorted(groups.items(), key=lambda item: item[0])
        ], **optimizer_kwargs)
        return self.optimizer


# TrainingArguments' name for gradient checkpointing: activation_checkpointing in newer 5.x releases, which
# warn on the old one
CHECKPOINTING = ("activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
                 else "gradient_checkpointing")


def training_arguments(config: Config, max_steps: int, iterable: bool, steps_per_epoch: int,
                       task: Task = SingleLabel()) -> TrainingArguments:
    """The Trainer's arguments. Under torchrun / accelerate launch they also set up the process group:
    gloo on CPU, nccl on GPUs; each process then trains on its own shard of every epoch."""
    workers = config.data.workers()
    per_epoch = {"eval_steps": steps_per_epoch, "save_steps": steps_per_epoch} if iterable else {}
    return TrainingArguments(
        output_dir=config.train.output_dir,
        # on a machine without a GPU, accelerate sets up gloo for several processes, and bf16 autocast on
        # the CPU, only when told to use the CPU
        use_cpu=(world_size() > 1 or config.train.mixed_precision == "bf16") and not (
            torch.cuda.is_available() or torch.backends.mps.is_available()),
        # repeated augmentation: batch_size clips are batch_size / k videos, k clips from each
        per_device_train_batch_size=config.train.batch_size // config.train.repeated_augmentation,
        gradient_accumulation_steps=config.train.gradient_accumulation_steps,
        **{CHECKPOINTING: config.train.gradient_checkpointing},
        per_device_eval_batch_size=config.train.batch_size,
        learning_rate=config.train.learning_rate,
        warmup_steps=config.train.warmup,  # below 1: a ratio of all steps
        weight_decay=config.train.weight_decay,
        num_train_epochs=config.train.epochs,
        max_steps=max_steps if iterable or config.train.max_steps else -1,
        eval_strategy="steps" if iterable else "epoch",
        save_strategy="steps" if iterable else "epoch",
        **per_epoch,
        save_total_limit=2,  # the best checkpoint and the last one are kept
        metric_for_best_model=task.best_metric,  # best model reloaded below, through from_pretrained
        logging_steps=config.train.logging_steps,
        report_to=check_report_to(config.train.report_to),
        seed=config.train.seed,
        fp16=config.train.mixed_precision == "fp16",
        bf16=config.train.mixed_precision == "bf16",
        dataloader_num_workers=workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        dataloader_persistent_workers=config.data.persistent_workers and workers > 0,
        dataloader_prefetch_factor=config.data.prefetch_factor if workers > 0 else None,
        remove_unused_columns=False,  # the collate reads "video" and "label"
        push_to_hub=config.train.push_to_hub,
        hub_model_id=config.train.hub_model_id,
    )


# train.report_to name -> the package it needs (pip name)
REPORTING_PACKAGES = {"azure_ml": "azureml-core", "comet_ml": "comet-ml", "mlflow": "mlflow", "neptune": "neptune",
                      "tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "codecarbon": "codecarbon",
                      "clearml": "clearml", "dagshub": "dagshub", "flyte": "flytekit", "dvclive": "dvclive",
                      "swanlab": "swanlab", "kubeflow": "kubeflow"}


def check_report_to(value: str) -> list[str]:
    """train.report_to as TrainingArguments takes it; every named logger must be one transformers has,
    with its package installed."""
    from transformers.integrations import get_available_reporting_integrations

    names = [name.strip() for name in value.split(",") if name.strip()]
    if names in (["none"], ["all"]):
        return names
    available = set(get_available_reporting_integrations())
    for name in names:
        if name not in REPORTING_PACKAGES:
            raise UserError(f"train.report_to: unknown logger {name!r}: use none, all, or some of "
                            f"{', '.join(sorted(REPORTING_PACKAGES))} (comma-separated)")
        if name not in available:
            raise UserError(f"train.report_to: {name} needs the package {REPORTING_PACKAGES[name]}, which is not "
                            f"installed here: pip install {REPORTING_PACKAGES[name]}, or set train.report_to: none")
    return names


def world_size() -> int:
    """Processes in this run: torchrun and accelerate launch set WORLD_SIZE; 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def weights_digest(model: torch.nn.Module) -> str:
    """A short hash of all parameters: equal in every process of a data-parallel run."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
