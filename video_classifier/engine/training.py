"""A training run, as its phases: check the options, reuse a finished run, plan the steps, open the output
folder (resuming an interrupted run), load the model, build the data, say what will run, train, restore the
best checkpoint, save, evaluate, write the card and push. The Trainer itself is trainer.py's."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments, set_seed
from transformers.utils import logging as transformers_logging

from ..core.config import Config, TrainConfig, save_config
from ..core.errors import UserError, first_line
from ..core.hub import Wanted, explain
from ..core.run_folder import (
    ADAPTER,
    FAILURES,
    METRICS,
    RESOLVED_CONFIG,
    TRAINING_PLOT,
    finished_run,
    last_checkpoint,
    mark,
    resume_point,
)
from ..core.task import TASKS, MultiLabel, SingleLabel, Task, class_counts, task_for
from ..data.audit_lists import leak_warning
from ..data.clips import DecodeFailures
from ..data.datasets import build_datasets, pipeline_stride, streams_training
from ..data.manifest import VideoRecord, copy_labels, load_prepared, prepared_task
from ..data.sources import source_of
from ..model import unknown
from ..model.folding import TEMPERATURE, fold_temperature, fold_thresholds
from ..model.model_spec import ModelSpec, describe, record_in_config, save_image_processor
from ..model.modeling import ensure_tiny_checkpoint, load_for_training, load_processor
from ..model.precision import MIN_AGREEMENT, choose_here
from ..model.trainable import describe_trainable, load_adapter, make_trainable, save_merged
from .evaluation import bf16_agreement, evaluate_model, plot_training
from .features import cached_backbone, check_cacheable, feature_datasets
from .model_card import write_model_card
from .trainer import (
    ClipMetrics,
    StopOnUnreadableData,
    VideoTrainer,
    check_report_to,
    sample_weights,
    training_arguments,
    weights_digest,
    world_size,
)


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


def train(config: Config) -> dict[str, Any]:
    """The whole run: labels, checkpoint, preprocessing, datasets, Trainer, metrics. Returns metrics
    (in the main process; the others of a data-parallel run return an empty dict)."""
    check_options(config)
    finished = reuse_finished_run(config)
    if finished is not None:
        return finished
    plan = plan_run(config)
    args = training_arguments(config, plan.max_steps, plan.iterable, plan.steps_per_epoch, plan.task)
    main = args.process_index == 0  # only the main process writes the output folder and prints
    if not main:
        transformers_logging.set_verbosity_error()  # the main process reports loading and training
    if not Path(config.model.checkpoint).expanduser().exists() and config.model.tiny_init is None:
        load_processor(config.model.checkpoint, config.model.revision)  # a Hub id that fails stops before any write
    resume = open_output_folder(config, args, main)
    model, processor, spec = load_model(config, plan, args, resume)
    failures = DecodeFailures(Path(config.train.output_dir) / FAILURES)
    data = training_data(config, plan, model, spec, args, failures)
    if main:
        report_plan(config, plan, args, model, spec, data)
    trainer = make_trainer(config, plan, args, model, processor, spec, data)
    fit(trainer, resume, spec, data.cached, main)
    if not main:
        return {}  # the main process saves and evaluates once
    restore_best(trainer, config, plan, spec)
    save_outputs(trainer, config, processor)
    metrics = final_evaluation(trainer, config, plan, spec, failures)
    publish(trainer, config, metrics, spec)
    return metrics


def check_options(config: Config) -> None:
    """The options that can be refused before anything is read or loaded, each with its one-line error."""
    check_report_to(config.train.report_to)
    source = source_of(config.data)  # the source named checks its own settings
    if config.train.cache_features:
        check_cacheable(config)
    k = config.train.repeated_augmentation
    if k > 1 and (config.data.backend == "pytorchvideo" or source.streams(config.data)):
        where = "data.backend: pytorchvideo" if config.data.backend == "pytorchvideo" else source.stream_setting
        raise UserError(f"train.repeated_augmentation: {k} makes k clips from each decoded window of the native "
                        f"map-style dataset; {where} reads one clip per video: set train.repeated_augmentation: 1")


def reuse_finished_run(config: Config) -> dict[str, Any] | None:
    """A finished run of this same config in the output folder: its metrics, said and returned."""
    finished = finished_run(config)
    if finished is not None:
        headline = "mAP" if "mAP" in finished["test"] else "top1"
        print(f"{config.train.output_dir} already holds this run (same config): reusing it; test {headline} "
              f"{finished['test'][headline]:.4f}")
    return finished


@dataclass
class Plan:
    """What a run trains on, and for how many steps: decided from the prepared data before anything loads."""

    label2id: dict[str, int]
    by_split: dict[str, list[VideoRecord]]
    task: Task
    iterable: bool  # the training data has no length (pytorchvideo's dataset, a stream): steps are counted
    probed: list[VideoRecord]  # videos whose header was read (a streamed train split is read as it streams)
    processes: int
    accumulation: int
    steps_per_epoch: int
    max_steps: int


def plan_run(config: Config) -> Plan:
    label2id, records = load_prepared(config.data.root)
    by_split = {s: [r for r in records if r.split == s] for s in ("train", "val", "test")}
    for split, rows in by_split.items():
        if not rows:
            raise UserError(f"data folder {config.data.root} has no {split} videos: prepare the data again")
    processes, accumulation = world_size(), config.train.gradient_accumulation_steps
    # each process takes batch_size clips per step from its own shard of the epoch's videos (repeated augmentation: k clips of each
    # of batch_size / k videos); one optimizer step takes batch_size clips x gradient_accumulation_steps
    videos_per_batch = config.train.batch_size // config.train.repeated_augmentation
    steps_per_epoch = math.ceil(len(by_split["train"]) / (videos_per_batch * accumulation * processes))
    return Plan(
        label2id=label2id, by_split=by_split, task=choose_task(config.train, config.data.root),
        iterable=config.data.backend == "pytorchvideo" or streams_training(config.data),
        probed=[r for r in by_split["train"] if r.fps > 0] or by_split["val"],
        processes=processes, accumulation=accumulation, steps_per_epoch=steps_per_epoch,
        max_steps=config.train.max_steps or steps_per_epoch * config.train.epochs,
    )


def open_output_folder(config: Config, args: TrainingArguments, main: bool) -> str | None:
    """The output folder, made and marked (the main process first: it may clear it); the checkpoint an
    interrupted run resumes from, or None."""
    out = Path(config.train.output_dir)
    with args.main_process_first(local=False, desc="output folder"):
        resume = resume_point(config) if main else last_checkpoint(out)
        if main:
            mark(out)
    return resume


def base_model(config: Config, plan: Plan) -> Any:
    """The checkpoint (at model.revision) with a new head of model.head's kind."""
    return load_for_training(config.model.checkpoint, plan.label2id, config.train, plan.task, config.model,
                             config.model.revision)


def load_model(config: Config, plan: Plan, args: TrainingArguments,
               resume: str | None) -> tuple[Any, Any, ModelSpec]:
    """The model ready to train (frozen or adapted as train.freeze / train.lora say), its processor, and its
    description (inputs, preprocessing, outputs), recorded in its config for inference.

    A resumed run reloads its weights through from_pretrained: the Trainer's own state-dict loading skips
    keys that transformers renames on load (VideoMAE's q_bias/v_bias), and keys it skips keep the values
    loaded here. A LoRA run's checkpoints hold the adapter only: it starts from the base checkpoint and the
    Trainer loads the adapter it resumes."""
    with args.main_process_first(local=True, desc="tiny checkpoint"):
        ensure_tiny_checkpoint(config.model, config.train.seed, quiet=args.process_index != 0)
    set_seed(config.train.seed)
    processor = load_processor(config.model.checkpoint, config.model.revision)
    model = (load_for_training(resume, plan.label2id, config.train, plan.task, config.model)
             if resume and config.train.lora is None else base_model(config, plan))
    spec = describe(model, processor, config.data.sample_rate, config.train,
                    whole_video=config.data.sampling == "whole_video")
    record_in_config(model.config, spec)  # read back by inference: frames are taken at this stride
    return make_trainable(model, config.train), processor, spec


@dataclass
class TrainingData:
    """What the Trainer reads: train and val (per-epoch clip metrics; the final evaluation builds its own
    views), and how the loss and the sampler weigh the classes."""

    datasets: dict[str, Any]
    decoding: str  # how the videos are read and decoded, in one line
    max_stride: float
    cached: bool  # the datasets hold the frozen backbone's tokens (train.cache_features)
    class_weights: torch.Tensor | None
    balanced: torch.Tensor | None  # the sampler's weight per training video (train.sampler: balanced)


def training_data(config: Config, plan: Plan, model: Any, spec: ModelSpec, args: TrainingArguments,
                  failures: DecodeFailures) -> TrainingData:
    max_stride = config.train.max_stride
    if max_stride == "auto":  # up to the stock pipeline's whole-video spacing
        max_stride = pipeline_stride(plan.probed, spec.preprocess.num_frames)
    by_split = plan.by_split
    datasets, decoding = build_datasets(config.data, {s: by_split[s] for s in ("train", "val")}, plan.label2id,
                                        spec.preprocess, max_stride, failures, spec.task)
    cached = config.train.cache_features
    if cached:  # the head trains on the frozen backbone's tokens, computed once here
        datasets = feature_datasets(model.to(args.device), spec, config, by_split, plan.label2id, failures)
    labels = [r.label for r in by_split["train"]]
    return TrainingData(
        datasets=datasets, decoding=decoding, max_stride=max_stride, cached=cached,
        class_weights=(spec.task.class_weights(labels, plan.label2id) if config.train.class_weights == "balanced"
                       else None),
        balanced=sample_weights(spec.task, labels, plan.label2id) if config.train.sampler == "balanced" else None,
    )


def report_plan(config: Config, plan: Plan, args: TrainingArguments, model: Any, spec: ModelSpec,
                data: TrainingData) -> None:
    """What will run, said once before training: the data, the task and its weights, the clips, the model
    and what of it trains, the batch and the steps."""
    train_videos = plan.by_split["train"]
    leaks = leak_warning(config.data.root, [r for split in plan.by_split.values() for r in split])
    if leaks:
        print(leaks, file=sys.stderr)
    print(f"data: {data.decoding}; {args.dataloader_num_workers} DataLoader workers per process")
    if data.class_weights is not None or data.balanced is not None or spec.task.name != SingleLabel.name:
        counts = class_counts(spec.task, [r.label for r in train_videos], plan.label2id)
        print(f"task: {spec.task.name}; training videos per class {min(counts)}-{max(counts)} "
              f"(largest / smallest {max(counts) / max(min(counts), 1):.1f})"
              + (f"; loss weights ({config.train.class_weights}) {data.class_weights.min():.3g}-"
                 f"{data.class_weights.max():.3g}" if data.class_weights is not None else "")
              + ("; class-balanced sampling (train.sampler: balanced)" if data.balanced is not None else ""))
    preprocess = spec.preprocess
    short = [r for r in plan.probed if r.split == "train" and r.duration < float(preprocess.clip_span(r.duration, r.fps))]
    if short:  # kept: their clips repeat frames to fill num_frames
        print(f"data: {len(short)} of {len(train_videos)} training videos are shorter than one clip "
              f"(e.g. {short[0].path}, {short[0].duration:.2f} s): kept, their clips repeat frames")
    jitter = (f"; training strides drawn from {preprocess.sample_rate}-{data.max_stride:.1f} (train.max_stride: "
              f"{config.train.max_stride})" if getattr(data.datasets["train"], "max_stride", None) else "")
    clips = (f"{preprocess.num_frames} frames spread over each whole video (data.sampling: whole_video)"
             if preprocess.whole_video else
             f"{preprocess.num_frames} frames x stride {preprocess.sample_rate} = "
             f"{float(preprocess.clip_duration(plan.probed[0].fps)):.2f} s")
    if preprocess.whole_video_clips and not preprocess.whole_video:
        clips += (f" ({preprocess.whole_video_clips:.0%} of training clips spread over the whole video instead, as "
                  "the stock pipeline samples: train.whole_video_clips)")
    print(f"model: {spec.model_type}, clips of {clips}, "
          f"{preprocess.crop_size[0]}x{preprocess.crop_size[1]} px as {spec.input_key}{jitter}")
    print(f"model: {describe_trainable(model, config.train)}")
    print(f"train: {len(train_videos)} videos, {len(plan.label2id)} classes, {batch_and_steps(config, plan, args)}")


def batch_and_steps(config: Config, plan: Plan, args: TrainingArguments) -> str:
    accumulation, processes, batch = plan.accumulation, plan.processes, config.train.batch_size
    where = f"{processes} processes on {args.device.type} ({args.parallel_mode.value})" if processes > 1 else str(args.device)
    k = config.train.repeated_augmentation
    return (
        f"batch {batch}" + (f" clips ({batch // k} videos x {k} augmented clips of each)" if k > 1 else "")
        + (f" x {accumulation} accumulation steps" if accumulation > 1 else "")
        + (f" x {processes} processes" if processes > 1 else "")
        + (f" = effective batch {batch * accumulation * processes}" if accumulation > 1 or processes > 1 else "")
        + (", gradient checkpointing" if config.train.gradient_checkpointing else "") + ", "
        + (f"{plan.steps_per_epoch} steps/epoch x {config.train.epochs} epochs = {plan.max_steps} steps on {where}"
           if config.train.max_steps is None else
           f"{plan.steps_per_epoch} steps/epoch, stopping after train.max_steps = {plan.max_steps} steps on {where}")
    )


def make_trainer(config: Config, plan: Plan, args: TrainingArguments, model: Any, processor: Any,
                 spec: ModelSpec, data: TrainingData) -> VideoTrainer:
    return VideoTrainer(
        spec=spec,
        train_options=config.train,
        model=model,
        args=args,
        train_dataset=data.datasets["train"],
        eval_dataset=data.datasets["val"],
        processing_class=processor,  # saved beside the model
        data_collator=spec.collate,
        compute_metrics=ClipMetrics(spec),
        callbacks=[StopOnUnreadableData(Path(config.train.output_dir) / FAILURES, len(plan.by_split["train"]))],
        class_weights=data.class_weights,
        sample_weights=data.balanced,
        cached_features=data.cached,
    )


def fit(trainer: VideoTrainer, resume: str | None, spec: ModelSpec, cached: bool, main: bool) -> None:
    """Train, resuming an interrupted run; a data-parallel run's processes show they hold the same weights."""
    if resume and main:
        print(f"resuming from {resume}")
    with cached_backbone(trainer.model, spec) if cached else contextlib.nullcontext():
        trainer.train(resume_from_checkpoint=resume)
    processes = world_size()
    if processes > 1:  # every process holds the same weights after the all-reduced steps: show it
        print(f"process {trainer.args.process_index} of {processes}: {trainer.state.global_step} steps, "
              f"weights {weights_digest(trainer.accelerator.unwrap_model(trainer.model))}", flush=True)


def restore_best(trainer: VideoTrainer, config: Config, plan: Plan, spec: ModelSpec) -> None:
    """The best checkpoint's weights back in the trainer's model (a LoRA run: the base checkpoint, then the
    best checkpoint's adapter and head over it)."""
    best = trainer.state.best_model_checkpoint
    if not best:
        return
    print(f"best validation {plan.task.best_metric} {trainer.state.best_metric:.4f} at {best}")
    if config.train.lora is not None:
        base = base_model(config, plan)
        record_in_config(base.config, spec)
        trainer.model = load_adapter(base, best)
    else:
        trainer.model = load_for_training(best, plan.label2id, task=plan.task, model=config.model)
    trainer.model = trainer.model_wrapped = trainer.model.to(trainer.args.device)


def save_outputs(trainer: VideoTrainer, config: Config, processor: Any) -> None:
    """The model (a LoRA run: merged, its adapter in adapter/), processor, labels, config and training plot."""
    out = Path(config.train.output_dir)
    if config.train.lora is not None:
        trainer.model = trainer.model_wrapped = save_merged(trainer.model, out)
        print(f"LoRA: adapter in {out / ADAPTER}, merged model in {out}")
    trainer.save_model()
    save_image_processor(processor, trainer.model.config.model_type, out)
    copy_labels(config.data.root, out)  # data.root may be a URL (source: shards)
    save_config(config, out / RESOLVED_CONFIG)
    plot_training(trainer.state.log_history, out / TRAINING_PLOT, trainer.spec.task.best_metric)


def final_evaluation(trainer: VideoTrainer, config: Config, plan: Plan, spec: ModelSpec,
                     failures: DecodeFailures) -> dict[str, Any]:
    """The kept model at video level (multi-view) and clip level, on val and test. A multi-label task
    chooses its per-class thresholds on val and folds them into the saved model (fold_saved) before test
    is scored; clips of training videos that did not decode are counted beside the numbers they touched."""
    out = Path(config.train.output_dir)
    final = {s: plan.by_split[s] for s in ("val", "test")}
    metrics = evaluate_model(trainer.model.eval(), spec, config, final, plan.label2id, out, METRICS, saved=out,
                             failures=failures, fit_on="val",
                             after_fit=lambda fitted, m: keep_unknown_threshold(
                                 trainer, fold_saved(trainer, fitted, m.get("temperature"),
                                                     lora=config.train.lora is not None), m, config))
    record_bf16_agreement(trainer, config, plan, replace(spec, task=task_for(trainer.model.config)), failures)
    training_failures = DecodeFailures.summary(out / FAILURES).get("train")
    if training_failures:  # the run went on without these videos' clips: say so where its numbers are
        metrics["train"] = {"clips_replaced": training_failures["failures"], "videos_failing": training_failures["videos"]}
        (out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"train: {training_failures['failures']} clips of {len(training_failures['videos'])} videos did not "
              f"decode and were replaced (listed in {out / FAILURES})")
    return metrics


def record_bf16_agreement(trainer: VideoTrainer, config: Config, plan: Plan, spec: ModelSpec,
                          failures: DecodeFailures) -> None:
    """How often bf16 keeps the model's prediction on val (evaluation.bf16_agreement), kept in config.json
    (bf16_agreement): infer.precision auto stays in fp32 below precision.MIN_AGREEMENT. Measured only where
    this machine multiplies bf16 natively: emulated, a VideoMAE-B clip takes 6x fp32's time (16.5 s against
    2.6 s on a 2-core AMD EPYC), minutes over a val set, to answer a question auto does not ask here."""
    here = choose_here("auto", trainer.model.device.type)
    if here.name != "bf16":
        print(f"bf16 inference not checked: {here.why.removeprefix('infer.precision: auto, ')}, where it would be "
              "emulated at several times fp32's time (nothing recorded: on bf16 hardware infer.precision auto "
              "uses bf16 for this model unmeasured)")
        return
    try:
        record = bf16_agreement(trainer.model, spec, plan.by_split["val"], config, plan.label2id, failures)
    except RuntimeError as err:  # torch's bf16 kernels can refuse (ATEN_CPU_CAPABILITY below the CPU's flags)
        print(f"bf16 inference not checked ({first_line(err)}): nothing recorded, infer.precision auto decides "
              "by the hardware alone")
        return
    if record["agreement"] is None:
        return
    trainer.model.config.bf16_agreement = record
    trainer.model.config.save_pretrained(trainer.args.output_dir)
    verdict = "infer.precision auto may use it" if record["agreement"] >= MIN_AGREEMENT else \
        f"under {MIN_AGREEMENT:.0%}: infer.precision auto keeps fp32"
    print(f"bf16 inference kept the prediction of {record['agreement']:.1%} of {record['videos']} val videos "
          f"(1 clip x 1 crop) against fp32: {verdict} (config.json bf16_agreement)")


def fold_saved(trainer: VideoTrainer, spec: ModelSpec, temperature: float | None = None,
               lora: bool = False) -> ModelSpec:
    """The thresholds the task chose on val folded into the classifier's bias and the model saved again, so
    the stock pipeline's labels at 0.5 are infer.py's (folding.py); the spec returned scores the folded
    model at 0.5. A model without a linear classifier keeps its thresholds in config.json only. A single-
    label model's `temperature` fitted on val is folded into its classifier the same way (calibration.py)."""
    thresholds = getattr(spec.task, "thresholds", None)
    if temperature is not None and thresholds is None:
        if lora:  # the adapter (adapter/) and the merged copy would disagree
            print(f"temperature {temperature:.3f} fitted on val, not folded: a LoRA run's adapter and its merged "
                  "model keep the trained classifier (metrics.json has it: divide the logits by it)")
        elif fold_temperature(trainer.model, temperature):
            trainer.save_model()
            print(f"temperature {temperature:.3f} fitted on val folded into the classifier (config.json "
                  f"{TEMPERATURE}): calibrated scores in infer.py, the stock pipeline and the exports alike")
        else:
            print("scores not calibrated: this model has no linear classifier to fold the temperature into")
        return spec
    if thresholds is None:
        return spec
    by_label = {spec.id2label[i]: t for i, t in enumerate(thresholds)}
    if not fold_thresholds(trainer.model, by_label):
        trainer.model.config.label_thresholds = by_label
        trainer.model.config.save_pretrained(trainer.args.output_dir)
        print("thresholds kept in config.json (label_thresholds): this model has no linear classifier to fold "
              "them into, so the stock pipeline reads its scores at 0.5, not at them")
        return spec
    trainer.save_model()
    print("thresholds chosen on val folded into the classifier's bias (config.json label_thresholds_folded): "
          "a label is on where its score passes 0.5, in infer.py and the stock pipeline alike")
    return replace(spec, task=task_for(trainer.model.config))


def keep_unknown_threshold(trainer: VideoTrainer, spec: ModelSpec, val: dict[str, Any], config: Config) -> ModelSpec:
    """The unknown threshold chosen on val (evaluation.calibration_metrics: the top score infer.unknown_accept
    of the val videos reach, on the scores the saved model gives) kept in config.json for infer.unknown: auto;
    a run with a background class keeps that class's name instead. The spec returned reports, on test, the
    share of videos below the threshold."""
    model_config = trainer.model.config
    if config.data.background:
        setattr(model_config, unknown.BACKGROUND, config.data.background)
        model_config.save_pretrained(trainer.args.output_dir)
        return spec
    folded = getattr(model_config, TEMPERATURE, None) is not None
    threshold = val.get("unknown_threshold" if folded else "unknown_threshold_uncalibrated")
    if threshold is None:  # multi-label: per-class thresholds answer "no label" instead
        return spec
    setattr(model_config, unknown.THRESHOLD, threshold)
    setattr(model_config, unknown.ACCEPT, config.infer.unknown_accept)
    model_config.save_pretrained(trainer.args.output_dir)
    print(f"unknown threshold {threshold:.3f} chosen on val ({config.infer.unknown_accept:.0%} of its videos reach it; "
          f"config.json {unknown.THRESHOLD}): infer.unknown: auto answers unknown below it")
    return replace(spec, unknown=threshold)


def publish(trainer: VideoTrainer, config: Config, metrics: dict[str, Any], spec: ModelSpec) -> None:
    """The model card, then (train.push_to_hub) the folder to the Hub with that card."""
    card = write_model_card(config, metrics, spec.model_type, spec.preprocess.num_frames, Path(config.train.output_dir))
    print(f"model card: {card}")
    if config.train.push_to_hub:
        try:
            trainer.push_to_hub()  # with our card (VideoTrainer.create_model_card keeps it)
        except Exception as err:
            line = explain(err, Wanted("model repo", config.train.hub_model_id or trainer.args.hub_model_id or "",
                                       "train.hub_model_id", f"the run folder {config.train.output_dir} holds it all: "
                                       "upload it later with `hf upload`"))
            if line is None:
                raise
            raise UserError(f"not pushed: {line}") from None
