"""Fine-tune a video classifier with the transformers Trainer; write model, processor, metrics."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from torchvision import tv_tensors
from torchvision.transforms import v2
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as transformers_logging

from ..core.config import Config, TrainConfig, save_config
from ..core.errors import UserError
from ..core.task import TASKS, MultiLabel, SingleLabel, Task, class_counts
from ..data.clips import DecodeFailures
from ..data.datasets import build_datasets, pipeline_stride, streams_training
from ..data.manifest import copy_labels, load_prepared, prepared_task
from ..data.streaming import per_process_loader
from ..model.model_spec import ModelSpec, backbone, describe, layer_depths, record_in_config, save_image_processor
from ..model.modeling import ensure_tiny_checkpoint, load_for_training, load_processor
from ..model.trainable import ADAPTER, describe_trainable, load_adapter, make_trainable, save_merged
from .evaluation import evaluate_model, plot_training
from .features import cached_backbone, check_cacheable, feature_datasets
from .model_card import CARD, write_model_card

METRICS = "metrics.json"  # the final evaluation of val and test
RESOLVED_CONFIG = "config.yaml"


class ClipMetrics:
    """The Trainer's compute_metrics: the task's clip-level metrics of its logits (picklable)."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        return self.spec.task.clip_metrics(ModelSpec.class_scores(prediction.predictions), prediction.label_ids)


def _finished_run(config: Config) -> dict[str, Any] | None:
    """The metrics of a finished run of this same config in the output folder, if there is one."""
    out = Path(config.train.output_dir)
    if config.train.overwrite_output_dir or not (out / METRICS).is_file():
        return None
    saved = out / RESOLVED_CONFIG
    if not saved.is_file() or yaml.safe_load(saved.read_text()) != config.to_dict():
        raise UserError(
            f"output folder {out} already holds a finished run with another config: "
            "set train.output_dir to a new folder, or --set train.overwrite_output_dir=true"
        )
    return json.loads((out / METRICS).read_text())


def _last_checkpoint(out: Path) -> str | None:
    return get_last_checkpoint(str(out)) if out.is_dir() else None


FAILURES = "decode_failures.csv"  # clips that did not decode: split, video, reason
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


# Every output folder train.py starts is marked with this file; overwrite_output_dir clears only
# marked folders, and in them only the entries a run writes (OURS), never anything else.
MARKER = ".video-classifier-run"
OURS = ("checkpoint-*", "runs", "model.safetensors", "model-*.safetensors", "model.safetensors.index.json",
        "config.json", "preprocessor_config.json", "video_preprocessor_config.json", "training_args.bin",
        "labels.json", RESOLVED_CONFIG, METRICS, "training.png", "confusion_*.png", "per_class_*.png", "scores_*.json",
        "eval_*.json", "README.md", FAILURES, MARKER, ADAPTER)


def clear_output_dir(out: Path) -> list[str]:
    """Delete what runs of ours wrote in `out`, a folder a run of ours marked; returns the names of the
    entries kept (not ours). An unmarked folder with anything in it is refused: it may be the user's."""
    entries = sorted(out.iterdir())
    if not (out / MARKER).is_file():
        if entries:
            raise UserError(
                f"train.overwrite_output_dir: output folder {out} was not made by train.py (no {MARKER} in it), so "
                f"nothing in it is deleted: set train.output_dir to a new folder, or empty {out} yourself"
            )
        return []
    kept = []
    for entry in entries:
        if not any(entry.match(pattern) for pattern in OURS):
            kept.append(entry.name)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return kept


def _resume_point(config: Config) -> str | None:
    """The last checkpoint of an interrupted run to resume from; None to start afresh."""
    out = Path(config.train.output_dir)
    if not out.is_dir():
        return None
    if config.train.overwrite_output_dir:
        kept = clear_output_dir(out)
        if kept:
            print(f"train.overwrite_output_dir: cleared the last run in {out}; kept {len(kept)} entries train.py "
                  f"did not write ({', '.join(kept[:3])}{', ...' if len(kept) > 3 else ''})")
        return None
    last = _last_checkpoint(out)
    if last is None and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UserError(
            f"output folder {out} exists and holds no training run of ours: "
            "set train.output_dir to a new folder, or --set train.overwrite_output_dir=true"
        )
    return last


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
        per_device_train_batch_size=config.train.batch_size,
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


def choose_task(train: TrainConfig, root: str | Path) -> Task:
    """train.task, or with "auto" the task the prepared labels make (labels.json)."""
    prepared = prepared_task(root)
    name = prepared if train.task == "auto" else train.task
    if name == SingleLabel.name and prepared == MultiLabel.name:
        raise UserError(f"train.task: single_label, but {root} is multi-label (videos with several labels or none): "
                        "set train.task: auto or multi_label")
    if name == MultiLabel.name and (train.mixup_alpha > 0 or train.cutmix_alpha > 0):
        raise UserError("train.mixup_alpha / train.cutmix_alpha mix one label per clip: set both to 0 for a "
                        "multi-label run")
    return TASKS[name]()


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


def train(config: Config) -> dict[str, Any]:
    """The whole run: labels, checkpoint, preprocessing, datasets, Trainer, metrics. Returns metrics
    (in the main process; the others of a data-parallel run return an empty dict)."""
    out = Path(config.train.output_dir)
    check_report_to(config.train.report_to)
    if config.train.cache_features:
        check_cacheable(config)
    finished = _finished_run(config)
    if finished is not None:
        headline = "mAP" if "mAP" in finished["test"] else "top1"
        print(f"{out} already holds this run (same config): reusing it; test {headline} "
              f"{finished['test'][headline]:.4f}")
        return finished

    # Labels and data
    label2id, records = load_prepared(config.data.root)
    by_split = {s: [r for r in records if r.split == s] for s in ("train", "val", "test")}
    for split, rows in by_split.items():
        if not rows:
            raise UserError(f"data folder {config.data.root} has no {split} videos: prepare the data again")
    iterable = config.data.backend == "pytorchvideo" or streams_training(config.data)  # no length: count steps
    # the videos whose header was read (a streamed train split is read as it streams: hf_source.py)
    probed = [r for r in by_split["train"] if r.fps > 0] or by_split["val"]
    processes = world_size()
    # each process takes batch_size clips per step from its own shard of the epoch
    # one optimizer step takes batch_size clips x gradient_accumulation_steps in each process
    accumulation = config.train.gradient_accumulation_steps
    steps_per_epoch = math.ceil(len(by_split["train"]) / (config.train.batch_size * accumulation * processes))
    max_steps = config.train.max_steps or steps_per_epoch * config.train.epochs
    task = choose_task(config.train, config.data.root)
    args = training_arguments(config, max_steps, iterable, steps_per_epoch, task)
    main = args.process_index == 0  # only the main process writes the output folder and prints
    say = print if main else (lambda *_, **__: None)
    if not main:
        transformers_logging.set_verbosity_error()  # the main process reports loading and training

    # The output folder (the main process first: it may clear it) and the checkpoint
    with args.main_process_first(local=False, desc="output folder"):
        resume = _resume_point(config) if main else _last_checkpoint(out)
        if main:
            out.mkdir(parents=True, exist_ok=True)
            (out / MARKER).write_text("made by train.py: train.overwrite_output_dir may clear what it wrote here\n")
    with args.main_process_first(local=True, desc="tiny checkpoint"):
        ensure_tiny_checkpoint(config.model, config.train.seed, quiet=not main)
    set_seed(config.train.seed)
    processor = load_processor(config.model.checkpoint, config.model.revision)
    # A resumed run reloads its weights through from_pretrained: the Trainer's own
    # state-dict loading skips keys that transformers renames on load (VideoMAE's
    # q_bias/v_bias), and keys it skips keep the values loaded here. A LoRA run's checkpoints hold the
    # adapter only: it starts from the base checkpoint and the Trainer loads the adapter it resumes.
    lora = config.train.lora is not None

    def base_model() -> Any:  # the checkpoint (at model.revision) with a new head of model.head's kind
        return load_for_training(config.model.checkpoint, label2id, config.train, task, config.model,
                                 config.model.revision)

    model = (load_for_training(resume, label2id, config.train, task, config.model) if resume and not lora
             else base_model())

    # The model's description (inputs, preprocessing, outputs) and the datasets
    spec = describe(model, processor, config.data.sample_rate, config.train,
                    whole_video=config.data.sampling == "whole_video")
    record_in_config(model.config, spec)  # read back by inference: frames are taken at this stride
    model = make_trainable(model, config.train)
    # the Trainer sees train and val (per-epoch clip accuracy); the final evaluation builds its own views
    max_stride = config.train.max_stride
    if max_stride == "auto":  # up to the stock pipeline's whole-video spacing
        max_stride = pipeline_stride(probed, spec.preprocess.num_frames)
    failures = DecodeFailures(out / FAILURES)
    datasets, decoding = build_datasets(config.data, {s: by_split[s] for s in ("train", "val")}, label2id,
                                        spec.preprocess, max_stride, failures, spec.task)
    say(f"data: {decoding}; {args.dataloader_num_workers} DataLoader workers per process")
    cache = config.train.cache_features
    if cache:  # the head trains on the frozen backbone's tokens, computed once here
        datasets = feature_datasets(model.to(args.device), spec, config, by_split, label2id, failures)
    train_labels = [r.label for r in by_split["train"]]
    class_weights = (spec.task.class_weights(train_labels, label2id) if config.train.class_weights == "balanced"
                     else None)
    balanced = sample_weights(spec.task, train_labels, label2id) if config.train.sampler == "balanced" else None
    if class_weights is not None or balanced is not None or spec.task.name != SingleLabel.name:
        counts = class_counts(spec.task, train_labels, label2id)
        say(f"task: {spec.task.name}; training videos per class {min(counts)}-{max(counts)} "
            f"(largest / smallest {max(counts) / max(min(counts), 1):.1f})"
            + (f"; loss weights ({config.train.class_weights}) {class_weights.min():.3g}-{class_weights.max():.3g}"
               if class_weights is not None else "")
            + ("; class-balanced sampling (train.sampler: balanced)" if balanced is not None else ""))
    short = [r for r in probed if r.split == "train" and
             r.duration < float(spec.preprocess.clip_span(r.duration, r.fps))]
    if short:  # kept: their clips repeat frames to fill num_frames
        say(f"data: {len(short)} of {len(by_split['train'])} training videos are shorter than one clip "
            f"(e.g. {short[0].path}, {short[0].duration:.2f} s): kept, their clips repeat frames")
    jitter = (f"; training strides drawn from {spec.preprocess.sample_rate}-{max_stride:.1f} (train.max_stride: "
              f"{config.train.max_stride})" if getattr(datasets["train"], "max_stride", None) else "")
    clips = (f"{spec.preprocess.num_frames} frames spread over each whole video (data.sampling: whole_video)"
             if spec.preprocess.whole_video else
             f"{spec.preprocess.num_frames} frames x stride {spec.preprocess.sample_rate} = "
             f"{float(spec.preprocess.clip_duration(probed[0].fps)):.2f} s")
    say(f"model: {spec.model_type}, clips of {clips}, "
        f"{spec.preprocess.crop_size[0]}x{spec.preprocess.crop_size[1]} px as {spec.input_key}{jitter}")
    say(f"model: {describe_trainable(model, config.train)}")
    where = f"{processes} processes on {args.device.type} ({args.parallel_mode.value})" if processes > 1 else str(args.device)
    say(
        f"train: {len(by_split['train'])} videos, {len(label2id)} classes, batch {config.train.batch_size}"
        + (f" x {accumulation} accumulation steps" if accumulation > 1 else "")
        + (f" x {processes} processes" if processes > 1 else "")
        + (f" = effective batch {config.train.batch_size * accumulation * processes}"
           if accumulation > 1 or processes > 1 else "")
        + (", gradient checkpointing" if config.train.gradient_checkpointing else "") + ", "
        + (f"{steps_per_epoch} steps/epoch x {config.train.epochs} epochs = {max_steps} steps on {where}"
           if config.train.max_steps is None else
           f"{steps_per_epoch} steps/epoch, stopping after train.max_steps = {max_steps} steps on {where}")
    )

    # Trainer
    trainer = VideoTrainer(
        spec=spec,
        train_options=config.train,
        model=model,
        args=args,
        train_dataset=datasets["train"],
        eval_dataset=datasets["val"],
        processing_class=processor,  # saved beside the model
        data_collator=spec.collate,
        compute_metrics=ClipMetrics(spec),
        callbacks=[StopOnUnreadableData(out / FAILURES, len(by_split["train"]))],
        class_weights=class_weights,
        sample_weights=balanced,
        cached_features=cache,
    )

    # Train (resuming an interrupted run), then evaluate the best model
    if resume:
        say(f"resuming from {resume}")
    with cached_backbone(model, spec) if cache else contextlib.nullcontext():
        trainer.train(resume_from_checkpoint=resume)
    if processes > 1:  # every process holds the same weights after the all-reduced steps: show it
        print(f"process {args.process_index} of {processes}: {trainer.state.global_step} steps, "
              f"weights {weights_digest(trainer.accelerator.unwrap_model(trainer.model))}", flush=True)
    best = trainer.state.best_model_checkpoint
    if not main:
        return {}  # the main process saves and evaluates once
    if best:
        print(f"best validation {task.best_metric} {trainer.state.best_metric:.4f} at {best}")
        if lora:  # the base checkpoint, then the best checkpoint's adapter and head over it
            base = base_model()
            record_in_config(base.config, spec)
            trainer.model = load_adapter(base, best)
        else:
            trainer.model = load_for_training(best, label2id, task=task, model=config.model)
        trainer.model = trainer.model_wrapped = trainer.model.to(trainer.args.device)
    if lora:  # the adapter in adapter/, the merged model in the output folder
        trainer.model = trainer.model_wrapped = save_merged(trainer.model, out)
        print(f"LoRA: adapter in {out / ADAPTER}, merged model in {out}")
    trainer.save_model()
    save_image_processor(processor, trainer.model.config.model_type, out)
    copy_labels(config.data.root, out)  # data.root may be a URL (source: shards)
    save_config(config, out / RESOLVED_CONFIG)
    plot_training(trainer.state.log_history, out / "training.png", task.best_metric)

    # Evaluate the kept model: video level (multi-view) and clip level, on val and test; a multi-label
    # task chooses its per-class thresholds on val, kept in config.json (label_thresholds) for inference
    final = {s: by_split[s] for s in ("val", "test")}
    metrics = evaluate_model(trainer.model.eval(), spec, config, final, label2id, out, METRICS, saved=out,
                             failures=failures, fit_on="val")
    if "thresholds" in metrics["val"]:
        trainer.model.config.label_thresholds = metrics["val"]["thresholds"]
        trainer.model.config.save_pretrained(out)
    training_failures = DecodeFailures.summary(out / FAILURES).get("train")
    if training_failures:  # the run went on without these videos' clips: say so where its numbers are
        metrics["train"] = {"clips_replaced": training_failures["failures"], "videos_failing": training_failures["videos"]}
        (out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"train: {training_failures['failures']} clips of {len(training_failures['videos'])} videos did not "
              f"decode and were replaced (listed in {out / FAILURES})")
    card = write_model_card(config, metrics, spec.model_type, spec.preprocess.num_frames, out)
    print(f"model card: {card}")
    if config.train.push_to_hub:
        trainer.push_to_hub()  # with our card (VideoTrainer.create_model_card keeps it)
    return metrics
