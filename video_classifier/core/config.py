"""Typed configuration: `config.yaml` -> dataclasses, validated when loaded.

An unknown key, a wrong type or an impossible value stops at once with one
line that names the key and what is allowed. Single keys can be overridden from
the command line with `--set section.key=value` (the value is parsed as YAML).
"""

from __future__ import annotations

import dataclasses
import os
import re
import string
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .errors import UserError


@dataclass
class SyntheticConfig:
    """Videos made on the fly in UCF101 layout; classes differ only by motion."""

    width: int = 320  # UCF101 is 320x240
    height: int = 240
    fps: int = 25  # UCF101 is 25 fps
    seconds: float = 7.0  # UCF101 clips average about 7 s
    # camera speed in frame widths per second (each video +-30%): 0.7 moves a
    # 0.64 s clip by 0.45 widths, a 2.56 s clip by 1.8
    speed: float = 0.7
    # mpeg4 bits per pixel per frame: 0.2 is UCF101's rate (about 400 kbit/s at
    # 320x240, 25 fps), which sets how fast the videos decode
    bits_per_pixel: float = 0.2
    # The harder set's knobs (configs/hard.yaml); the defaults make the demo's videos.
    seconds_max: Optional[float] = None  # each video's length drawn from [seconds, seconds_max]; None: `seconds`
    motion_fraction: float = 1.0  # the camera pans during one random window of this fraction of the video
    distractors: int = 0  # flat-colour squares moving in random directions over the view
    shake: float = 0.0  # camera shake: the view's jitter per frame, px (standard deviation)
    flicker: float = 0.0  # brightness swing, as a fraction (0.2: +-20%), at a random 0.5-2 Hz
    # several labels per video: a pan (or none) and a square's own motion (or none), drawn independently;
    # each group holds the 25 combinations (configs/multilabel.yaml)
    multi_label: bool = False
    # long tail: class k of C gets train_groups x imbalance^(-k / (C - 1)) training groups (at least 1),
    # so the largest class has `imbalance` times the smallest's; val and test stay balanced. 1: balanced
    imbalance: float = 1.0
    train_groups: int = 8  # groups (scenes) per class in each split; a group never crosses splits
    val_groups: int = 2
    test_groups: int = 3
    clips_per_group: int = 4
    seed: int = 0

    def validate(self, prefix: str) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 32 or value % 2:
                raise UserError(f"{prefix}.{name} = {value}: must be an even number >= 32 (mpeg4 needs even sizes)")
        _positive(self, prefix, "fps", "seconds", "speed", "bits_per_pixel", "train_groups", "val_groups", "test_groups", "clips_per_group")
        if self.seconds_max is not None and self.seconds_max < self.seconds:
            raise UserError(f"{prefix}.seconds_max = {self.seconds_max}: must be >= seconds ({self.seconds}), or null")
        if not 0 < self.motion_fraction <= 1:
            raise UserError(f"{prefix}.motion_fraction = {self.motion_fraction}: must be in (0, 1]")
        if self.distractors < 0 or self.shake < 0 or not 0 <= self.flicker < 1:
            raise UserError(f"{prefix}: distractors and shake must be >= 0, flicker in [0, 1)")
        if self.imbalance < 1:
            raise UserError(f"{prefix}.imbalance = {self.imbalance}: must be >= 1 (largest / smallest class; 1 = balanced)")
        if self.train_groups + self.val_groups + self.test_groups > 99:
            raise UserError(f"{prefix}: at most 99 groups in all (names are gNN)")


@dataclass
class HfDatasetConfig:
    """data.hf_dataset: a dataset that `datasets.load_dataset` reads (a Hub repo id or a local folder) with a
    video column and a label column; its videos are used from `datasets`' own cache, never copied."""

    path: str = ""  # a Hub dataset id ("user/my-videos") or a local folder (e.g. a videofolder with metadata.csv)
    name: Optional[str] = None  # the dataset's configuration (subset), where it has several
    revision: Optional[str] = None  # a branch, tag or commit of a Hub dataset; None = the default branch
    video_column: str = "video"  # a Video feature (or a column of file paths)
    # a ClassLabel, a string, or a list of strings (several labels per video: multi-label)
    # a field inside a column is column.field, e.g. json.label for a WebDataset's <key>.json
    label_column: str = "label"
    group_column: Optional[str] = None  # the recording each video was cut from; None: data.group_pattern on the file name
    # our split <- the dataset's split, e.g. {train: train, val: validation, test: test}; null: every split of
    # the dataset pooled and split by group with data.split_fractions, as for a folder
    splits: Optional[dict[str, str]] = None
    # true: nothing downloaded before training; the rows are listed (metadata only), the val and test videos
    # probed by byte ranges, and training streams the train split through `datasets` (needs splits)
    streaming: bool = False

    def validate(self, prefix: str) -> None:
        if not self.path:
            raise UserError(f"{prefix}.path is empty: give a Hub dataset id (user/name) or a local dataset folder")
        if self.streaming and self.splits is None:
            raise UserError(f"{prefix}.streaming reads the dataset's own splits: set {prefix}.splits, e.g. "
                            "{train: train, val: validation, test: test}")
        if self.splits is not None:
            unknown = sorted(set(self.splits) - {"train", "val", "test"})
            if unknown or "train" not in self.splits:
                raise UserError(f"{prefix}.splits = {self.splits}: map train (required), val, test to the dataset's "
                                "split names, e.g. {train: train, val: validation, test: test}")


@dataclass
class DataConfig:
    source: Literal["hub", "archive", "synthetic", "folder", "shards", "hf_dataset"] = "synthetic"
    # prepared data: <root>/{train,val,test}/<Class>/<video>; source shards: the folder or URL (file://,
    # http(s)://, hf://, s3://) holding the shards prepare_data.py --shards wrote
    root: str = "data/ucf101_subset"
    hub_repo: str = "sayakpaul/ucf101-subset"
    hub_filename: str = "UCF101_subset.tar.gz"
    hub_revision: Optional[str] = None  # a branch, tag or commit; None = the default branch
    archive: Optional[str] = None  # a local .tar.gz, for source: archive
    # source: folder — your videos, used in place (never copied or changed): a folder <Class>/**/<video>,
    # or a .csv/.jsonl list of path, label[, split][, group]
    videos: Optional[str] = None
    # recordings annotated with time ranges (docs/data.md#untrimmed-recordings): data.videos may be a list with
    # start/end columns, Label Studio's JSON export, ELAN .eaf files or a Kinetics list
    video_dir: Optional[str] = None  # where a Label Studio export's or a Kinetics list's videos are
    annotation_fps: Optional[float] = None  # Label Studio's <Video frameRate>; None: each video's own rate
    elan_tier: Optional[str] = None  # the ELAN tier holding the labels; None: a file's only tier
    # a class learnt from the stretches no annotation covers ("" or None: none; multi-label: "no labels")
    background: Optional[str] = None
    # seconds: a background segment's shortest length; None: a 16-frame clip at sample_rate plus the margin
    background_min: Optional[float] = None
    background_margin: float = 1.0  # seconds kept between a background segment and any annotated range
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])  # train/val/test, by group
    group_pattern: str = r"_g(\d+)_"  # a video's group from its file name (UCF101's); "" = each file its own
    split_seed: int = 0
    # audit.py's findings acted on (docs/audit.md): CSVs in issues.csv's shape, rows marked by the user
    exclude: Optional[str] = None  # the rows' videos left out of the prepared folder
    relabel: Optional[str] = None  # the rows' videos given the row's `label` (else the label the probe suggests)
    # an audit's issues.csv whose duplicate clusters each become one group (source: folder), so that no
    # split has a copy of another's video; prepare_data.py --split-by-duplicates FILE sets it
    duplicate_groups: Optional[str] = None
    on_bad_video: Literal["skip", "error"] = "skip"  # a video that does not decode: left out (rejected.csv), or stop
    sample_rate: int = 4  # keep every 4th frame: 16 frames x 4 at 25 fps = a 2.56 s clip
    # window: a clip is num_frames x sample_rate frames of the video (the guide's, VideoMAE's); whole_video:
    # num_frames spread over the whole video, the frames transformers' video processors sample (VideoPrism's
    # processor, do_sample_frames): one clip per video, the same frames in training (no temporal jitter)
    sampling: Literal["window", "whole_video"] = "window"
    # native: our map-style dataset, decoding only the frames a clip needs;
    # pytorchvideo: its LabeledVideoDataset with PyAV, the reference (slower)
    backend: Literal["native", "pytorchvideo"] = "native"
    decoder: Literal["auto", "torchcodec", "pyav"] = "auto"  # auto: torchcodec where FFmpeg's libraries load
    num_workers: Optional[int] = None  # DataLoader processes; None: one per CPU core, at most 8
    prefetch_factor: int = 2  # batches each worker prepares ahead
    persistent_workers: bool = True  # keep workers between epochs and evaluations
    # source shards: videos held in memory to shuffle the stream (each a video's bytes: 100 UCF101 videos
    # are about 60 MB per DataLoader worker); 0 reads the shards' own order
    shuffle_buffer: int = 100
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    hf_dataset: Optional[HfDatasetConfig] = None  # source: hf_dataset

    def validate(self, prefix: str) -> None:
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or self.split_fractions[0] <= 0:
            raise UserError(f"{prefix}.split_fractions = {self.split_fractions}: give [train, val, test], "
                            "each >= 0 and train > 0")
        try:
            re.compile(self.group_pattern)
        except re.error as err:
            raise UserError(f"{prefix}.group_pattern {self.group_pattern!r} is not a regular expression: {err}") from None
        _positive(self, prefix, "sample_rate", "prefetch_factor")
        if self.shuffle_buffer < 0:
            raise UserError(f"{prefix}.shuffle_buffer = {self.shuffle_buffer}: must be >= 0 (0: no shuffling)")
        if self.num_workers is not None and self.num_workers < 0:
            raise UserError(f"{prefix}.num_workers = {self.num_workers}: must be >= 0, or null for one per core")
        if self.annotation_fps is not None and self.annotation_fps <= 0:
            raise UserError(f"{prefix}.annotation_fps = {self.annotation_fps}: give the frame rate of Label Studio's "
                            "<Video frameRate> (> 0), or null for each video's own rate")
        if self.background_margin < 0 or (self.background_min is not None and self.background_min <= 0):
            raise UserError(f"{prefix}.background_min must be > 0 (or null) and background_margin >= 0 (seconds)")
        if self.backend == "pytorchvideo" and self.sampling == "whole_video":
            raise UserError(f"{prefix}.sampling: whole_video needs backend: native (pytorchvideo samples windows)")
        if self.backend == "pytorchvideo" and self.decoder == "torchcodec":
            raise UserError(f"{prefix}.decoder: the pytorchvideo backend decodes with PyAV only; use backend: native")

    def workers(self) -> int:
        return self.num_workers if self.num_workers is not None else min(8, os.cpu_count() or 1)


@dataclass
class TinyModelConfig:
    """A randomly initialised video model saved as a local checkpoint (offline demo and tests)."""

    # which of transformers' video classifiers (model_spec.ARCHITECTURES)
    architecture: Literal["videomae", "timesformer", "vivit", "vjepa2", "videoprism"] = "videomae"
    image_size: int = 64
    patch_size: int = 8
    num_frames: int = 8
    tubelet_size: int = 2
    hidden_size: int = 96
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 384

    def validate(self, prefix: str) -> None:
        _positive(self, prefix, *[f.name for f in dataclasses.fields(self) if f.name != "architecture"])
        if self.image_size % self.patch_size:
            raise UserError(f"{prefix}.image_size must be a multiple of patch_size ({self.patch_size})")
        if self.num_frames % self.tubelet_size:
            raise UserError(f"{prefix}.num_frames must be a multiple of tubelet_size ({self.tubelet_size})")
        if self.hidden_size % self.num_attention_heads:
            raise UserError(f"{prefix}.hidden_size must be a multiple of num_attention_heads")


@dataclass
class ModelConfig:
    checkpoint: str = "MCG-NJU/videomae-base"  # a Hub id or a local folder
    # a branch, tag, commit or pull request ("refs/pr/4") of a Hub checkpoint, for the weights and the
    # processor alike; None = the default branch
    revision: Optional[str] = None
    # the classifier on top of the backbone. auto: the architecture's own (VideoMAE, TimeSformer, ViViT: a
    # linear layer on pooled tokens; V-JEPA 2 and VideoPrism: an attentive pooler, then a linear layer).
    # attentive: an attentive pooler over all the backbone's tokens (transformers' V-JEPA 2 pooler), as
    # V-JEPA 2 is evaluated; linear: the architecture's linear head (not for V-JEPA 2 and VideoPrism)
    head: Literal["auto", "linear", "attentive"] = "auto"
    attentive_layers: int = 1  # self-attention layers of the attentive pooler before its cross-attention
    # When set and `checkpoint` is a folder that does not exist yet, a randomly
    # initialised model of this architecture and size is saved there first, then loaded back
    # through from_pretrained like any checkpoint.
    tiny_init: Optional[TinyModelConfig] = None
    # --zero-shot (an X-CLIP checkpoint, no training): each class's text, its name as words
    # (ApplyEyeMakeup -> "apply eye makeup") put in for {label}; the videos are scored against these texts
    zero_shot_prompt: str = "a video of {label}"

    def validate(self, prefix: str) -> None:
        if self.attentive_layers < 0:
            raise UserError(f"{prefix}.attentive_layers = {self.attentive_layers}: must be >= 0")
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(self.zero_shot_prompt) if name is not None}
        except ValueError as err:
            raise UserError(f"{prefix}.zero_shot_prompt {self.zero_shot_prompt!r}: {err} (write a literal brace "
                            "as {{ or }})") from None
        if fields != {"label"}:
            raise UserError(f"{prefix}.zero_shot_prompt {self.zero_shot_prompt!r}: must hold {{label}} and no "
                            "other {field}, e.g. \"a video of {label}\"")


@dataclass
class LoraOptions:
    """train.lora: low-rank adapters (peft's LoRA) on the backbone's attention; the head trains in full."""

    r: int = 16  # rank of each adapter
    alpha: float = 32  # the adapters' output is scaled by alpha / r
    dropout: float = 0.1  # on the adapters' input, in training
    # module names (peft matches the end of each module's name) or one regular expression for the whole name;
    # None: the architecture's attention projections (model_spec.LORA_TARGETS)
    target_modules: Optional[Union[list[str], str]] = None

    def validate(self, prefix: str) -> None:
        _positive(self, prefix, "r", "alpha")
        if not 0 <= self.dropout < 1:
            raise UserError(f"{prefix}.dropout = {self.dropout}: must be in [0, 1)")


@dataclass
class RandAugmentOptions:
    """train.rand_augment: torchvision's RandAugment over each training clip, one draw for all its frames."""

    num_ops: int = 4  # operations per clip (VideoMAE's rand-m7-n4: 4)
    magnitude: int = 7  # of 10, timm's scale (VideoMAE's: 7)

    def validate(self, prefix: str) -> None:
        if self.num_ops < 1:
            raise UserError(f"{prefix}.num_ops = {self.num_ops}: must be >= 1")
        if not 0 <= self.magnitude <= 10:
            raise UserError(f"{prefix}.magnitude = {self.magnitude}: must be 0-10 (timm's scale, as rand-m7)")


@dataclass
class TrainConfig:
    output_dir: str = "runs/videomae-base-finetuned-ucf101-subset"
    batch_size: int = 8
    learning_rate: float = 5e-5
    warmup: float = 0.1  # below 1: a fraction of all steps; from 1: a number of steps
    weight_decay: float = 0.0
    epochs: int = 4  # max_steps = ceil(train videos / (batch_size x processes)) x epochs
    max_steps: Optional[int] = None  # stop after this many optimizer steps; None: run all epochs
    seed: int = 42
    horizontal_flip: bool = True
    # random short-side scale before the random crop, as multiples of the crop size:
    # 256/224 and 320/224 are the guide's 256-320 px for a 224 px crop
    min_scale: float = 256 / 224
    max_scale: float = 320 / 224
    # Fine-tuning options for small datasets, all off in the guide's recipe; the VideoMAE paper
    # fine-tunes with label_smoothing 0.1, mixup_alpha 0.8, cutmix_alpha 1.0, layer_decay 0.75,
    # drop_path 0.1. Whether one helps on a given dataset is for a benchmark to show.
    label_smoothing: float = 0.0  # of the training loss's targets (torch's cross_entropy)
    mixup_alpha: float = 0.0  # Beta(alpha, alpha) mixing of two clips and their labels; 0 = off
    cutmix_alpha: float = 0.0  # the same box pasted into every frame; with both set, one of them per batch
    layer_decay: float = 1.0  # a layer's learning rate x layer_decay ^ (layers above it); 1 = off
    drop_path: float = 0.0  # stochastic depth, where the architecture has it (config drop_path_rate)
    # Temporal-scale jitter: each training clip's frame stride drawn from [data.sample_rate, max_stride]
    # (frames; its clip spans num_frames x stride). "auto": up to the stride of transformers' stock
    # video-classification pipeline, which spreads num_frames over the whole video, on the median
    # training video; null: every clip at data.sample_rate (the guide).
    max_stride: Optional[Union[Literal["auto"], float]] = None
    # The VideoMAE fine-tuning script's appearance augmentation and repeated augmentation, all off in the
    # guide's recipe (data/augment.py): RandAugment ({num_ops, magnitude}: VideoMAE's 4 and 7), random
    # erasing (the probability of one box of pixel noise, the same box in every frame; VideoMAE's 0.25),
    # repeated augmentation (k clips, each augmented on its own, from every decoded window; the batch counts
    # clips, so batch_size / k videos per batch; VideoMAE's num_sample 2)
    rand_augment: Optional[RandAugmentOptions] = None
    random_erasing: float = 0.0
    repeated_augmentation: int = 1
    # The share of training clips that spread the clip's frames over the whole video, as transformers' stock
    # pipeline samples (data.sampling: whole_video does it for every clip, and evaluates so too); the rest
    # are windows. Evaluation keeps windows: 0.5 trains the model for both readings (bench/accuracy.py)
    whole_video_clips: float = 0.0
    # auto: what the prepared labels make (labels.json: a list with a `labels` column is multi-label)
    task: Literal["auto", "single_label", "multi_label"] = "auto"
    # Imbalanced classes. class_weights balanced: the loss weighs each class by the training counts
    # (single-label: videos / (classes x its videos); multi-label: BCE's pos_weight = negatives /
    # positives); sampler balanced: videos drawn with replacement, every class as often.
    class_weights: Literal["none", "balanced"] = "none"
    sampler: Literal["random", "balanced"] = "random"
    # Memory: an optimizer step sums the gradients of gradient_accumulation_steps batches (effective batch =
    # batch_size x steps x processes, said when the run starts); gradient checkpointing recomputes each
    # layer's activations in the backward pass instead of keeping them (the Trainer's own, both)
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    # What trains. freeze backbone: only the head (a probe; the backbone runs in eval mode, its weights kept);
    # lora: low-rank adapters on the backbone's attention and the whole head (the output folder holds the
    # merged model, which plain transformers loads, and the adapter in adapter/)
    freeze: Literal["none", "backbone"] = "none"
    lora: Optional[LoraOptions] = None
    # with freeze: backbone and no augmentation: the backbone's tokens for each video's eval.num_clips clips
    # (centre crop) computed once and kept in memory; the head trains on them (features.py)
    cache_features: bool = False
    logging_steps: int = 10
    # "none", "tensorboard" (installed; event files in <output_dir>/runs), "wandb", ... as in
    # TrainingArguments, comma-separated for several; one whose package is missing is a one-line error
    report_to: str = "none"
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    overwrite_output_dir: bool = False
    push_to_hub: bool = False
    hub_model_id: Optional[str] = None

    def validate(self, prefix: str) -> None:
        _positive(self, prefix, "batch_size", "learning_rate", "epochs", "logging_steps", "gradient_accumulation_steps")
        if self.max_steps is not None and self.max_steps <= 0:
            raise UserError(f"{prefix}.max_steps = {self.max_steps}: must be > 0, or null to run all epochs")
        if self.warmup < 0 or self.weight_decay < 0:
            raise UserError(f"{prefix}.warmup and {prefix}.weight_decay must be >= 0")
        if not 0 < self.min_scale <= self.max_scale:
            raise UserError(f"{prefix}: need 0 < min_scale <= max_scale, got {self.min_scale} and {self.max_scale}")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.drop_path < 1:
            raise UserError(f"{prefix}.label_smoothing and {prefix}.drop_path must be in [0, 1)")
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise UserError(f"{prefix}.mixup_alpha and {prefix}.cutmix_alpha must be >= 0 (0 = off)")
        if not 0 <= self.whole_video_clips <= 1:
            raise UserError(f"{prefix}.whole_video_clips = {self.whole_video_clips}: a share, in [0, 1] (0 = off)")
        if not 0 <= self.random_erasing <= 1:
            raise UserError(f"{prefix}.random_erasing = {self.random_erasing}: a probability, in [0, 1] (0 = off)")
        if self.repeated_augmentation < 1 or self.batch_size % self.repeated_augmentation:
            raise UserError(f"{prefix}.repeated_augmentation = {self.repeated_augmentation}: must be >= 1 and divide "
                            f"{prefix}.batch_size ({self.batch_size} clips a batch, k from each video)")
        if not 0 < self.layer_decay <= 1:
            raise UserError(f"{prefix}.layer_decay = {self.layer_decay}: must be in (0, 1] (1 = off)")
        if isinstance(self.max_stride, float) and self.max_stride < 1:
            raise UserError(f"{prefix}.max_stride = {self.max_stride}: must be >= 1 (frames), \"auto\" or null (off)")
        if self.min_scale < 1:
            raise UserError(f"{prefix}.min_scale = {self.min_scale}: must be >= 1, or the random crop would not fit")
        if self.freeze == "backbone" and self.lora is not None:
            raise UserError(f"{prefix}.freeze: backbone and {prefix}.lora both set: choose one (a probe trains the head "
                            "only; LoRA trains adapters in the backbone too)")


@dataclass
class EvalConfig:
    """Video-level evaluation: each video scored from num_clips x num_crops views, softmax averaged."""

    num_clips: int = 5  # clips spread evenly over the video; 5 x 3 as in the VideoMAE paper
    num_crops: int = 3  # crops along the long side: left, centre, right
    batch_size: int = 32  # views per forward pass (a video's views are never split)

    def validate(self, prefix: str) -> None:
        _positive(self, prefix, "num_clips", "num_crops", "batch_size")


@dataclass
class InferConfig:
    top_k: int = 5
    mode: Literal["manual", "pipeline"] = "manual"
    # the number format of inference, evaluation, the timeline and the page (model/precision.py): auto is
    # bf16 where the CPU or GPU multiplies it natively (AMX, AVX512-BF16), fp32 elsewhere
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # torch.compile the model before it answers (model/compiling.py; torch backend): the first pass compiles
    compile: bool = False
    # "none of these" (docs/evaluation.md#unknown): a single-label video, window or live clip whose calibrated
    # top score is below a threshold answers `unknown`. auto: the threshold training chose on val, where
    # unknown_accept of the known val videos pass it (config.json unknown_threshold; a run with a background
    # class has none: that class answers instead); off: always a class; a number in (0, 1): that threshold
    unknown: Union[Literal["auto", "off"], float] = "off"
    unknown_accept: float = 0.95  # the share of known val videos auto's threshold accepts (chosen in training)

    def validate(self, prefix: str) -> None:
        _positive(self, prefix, "top_k")
        if isinstance(self.unknown, float) and not 0 < self.unknown < 1:
            raise UserError(f"{prefix}.unknown = {self.unknown}: give a score threshold in (0, 1), auto (chosen on "
                            "val in training) or off")
        if not 0 < self.unknown_accept <= 1:
            raise UserError(f"{prefix}.unknown_accept = {self.unknown_accept}: give the share of known val videos "
                            "to accept, in (0, 1] (e.g. 0.95)")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    infer: InferConfig = field(default_factory=InferConfig)

    def validate(self, prefix: str) -> None:
        if self.data.sampling == "whole_video":
            if self.eval.num_clips != 1:
                raise UserError(f"data.sampling: whole_video makes one clip per video: set eval.num_clips: 1 "
                                f"(not {self.eval.num_clips})")
            if self.train.max_stride is not None or self.train.whole_video_clips:
                raise UserError("data.sampling: whole_video spreads the frames over the whole video: set "
                                "train.max_stride: null and train.whole_video_clips: 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _positive(obj: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise UserError(f"{prefix}.{name} = {value}: must be > 0")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; return it (nested sections built)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        choices = [option for option in options if option is not type(None)]
        if len(choices) == 1:  # Optional[X]: X's own error, which may come from deep inside a section
            return _convert(value, choices[0], key)
        for option in choices:
            try:
                return _convert(value, option, key)
            except UserError:
                continue
        raise UserError(f"{key} = {value!r}: expected {_type_name(tp)}")
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{key} = {value!r}: expected a list, e.g. [0.8, 0.1, 0.1]")
        (item,) = typing.get_args(tp)
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key} = {value!r}: expected a mapping, e.g. {{train: train, val: validation}}")
        key_type, value_type = typing.get_args(tp)
        return {_convert(k, key_type, key): _convert(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if origin is Literal:
        if value is False and "off" in typing.get_args(tp):  # YAML 1.1 reads a bare `off` as false
            return "off"
        if value not in typing.get_args(tp):
            raise UserError(f"{key} = {value!r}: must be one of {_type_name(tp)}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"{key}: expected a section (a mapping of keys), got {value!r}")
        return _build(tp, value, key)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads `5e-5` as a string; accept what Python reads as a number
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise UserError(f"{key} = {value!r}: expected {_type_name(tp)}, got {type(value).__name__}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise UserError(f"unknown config key {where}{unknown[0]}: allowed keys here are {', '.join(names)}")
    values = {name: _convert(data[name], hints[name], f"{prefix}.{name}" if prefix else name) for name in data}
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate(prefix)
    return obj


def _apply_override(data: dict[str, Any], override: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise UserError(f"--set {override!r}: expected section.key=value, e.g. --set train.epochs=2")
    *sections, leaf = key.strip().split(".")
    node = data
    for section in sections:
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {override!r}: {section} is not a section")
    node[leaf] = yaml.safe_load(raw)


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read, override and validate a config file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} not found: pass --config with an existing YAML file (e.g. config.yaml)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {path}{where} is not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path}: expected a mapping of sections (data, model, train, infer)")
    for override in overrides:
        _apply_override(data, override)
    return _build(Config, data, "")


def save_config(config: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
