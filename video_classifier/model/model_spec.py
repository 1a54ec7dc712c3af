"""One description of a model and its inputs, built once from a checkpoint.

Everything that differs between the video classifiers transformers has lives
here and nowhere else: how to build a tiny one offline, how many frames a clip
has (`num_frames`, or V-JEPA 2's `frames_per_clip`), the input sizes and the
normalisation its processor applies (ViViT rescales to [-1, 1]; VideoPrism's
processor resizes to a square with bicubic filtering), the batch key its
`forward` takes (`pixel_values` or `pixel_values_videos`), and how to read its
logits (VideoPrism's come out as (batch, 1, classes)). Training, evaluation,
eval.py and infer.py take a `ModelSpec` and never ask what the model is.

The normalisation is read off the processor by running it, not from its
attributes: a black and a white uniform frame go through it, and the affine map
per channel that comes out is written as the `(x / 255 - mean) / std` our
transforms apply. So any processor that rescales and normalises per channel is
matched exactly, whatever its constants or its own arithmetic.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import numpy as np
import torch
import transformers
from torchvision.transforms import InterpolationMode
from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

from ..core.config import TinyModelConfig, TrainConfig
from ..core.errors import UserError
from ..core.task import SingleLabel, Task, task_for
from ..data.preprocessing import Normalize, PreprocessSpec

# model.tiny_init.architecture -> the transformers model type it builds
ARCHITECTURES = {
    "videomae": "videomae",
    "timesformer": "timesformer",
    "vivit": "vivit",
    "vjepa2": "vjepa2",
    "videoprism": "videoprism_vision_model",
}

# train.lora's default target_modules per model type: the attention's query and value projections of the
# backbone's encoder (as the LoRA paper adapts W_q and W_v; TimeSformer computes q, k and v in one layer),
# as one regular expression over the classification model's module names, so that neither the head's own
# attention (V-JEPA 2's and VideoPrism's poolers) nor V-JEPA 2's unused predictor gets adapters
LORA_TARGETS = {
    "videomae": r"videomae\.encoder\..*\.(query|value)",
    "timesformer": r"timesformer\.encoder\..*\.qkv",
    "vivit": r"vivit\..*\.(q_proj|v_proj)",
    "vjepa2": r"vjepa2\.encoder\..*\.(query|value)",
    "videoprism_vision_model": r"vision_model\..*_layers\..*\.(q_proj|v_proj)",
}

# architectures whose transformers head is an attentive pooler already (model.head: auto = attentive)
ATTENTIVE_HEADS = {"vjepa2", "videoprism_vision_model"}

# PIL's resampling codes, as processors store them -> torchvision's
_INTERPOLATION = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC}


@dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint needs of its inputs and how to read its outputs."""

    model_type: str
    input_key: str  # the batch key forward() takes: "pixel_values" or "pixel_values_videos"
    preprocess: PreprocessSpec
    id2label: dict[int, str] = field(default_factory=dict)
    task: Task = field(default_factory=SingleLabel)  # what the logits mean: scores, loss, metrics
    autocast: torch.dtype | None = None  # inference in bf16 or fp16 under torch.autocast (precision.py)
    unknown: float | None = None  # single-label: a top score below this answers "unknown" (unknown.py)

    def inputs(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T, C, H, W) model input (pixels(), float) -> the model's keyword arguments."""
        return {self.input_key: pixel_values}

    @cached_property
    def _normalize(self) -> Normalize:
        return Normalize(self.preprocess)

    def pixels(self, clips: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """uint8 clips (B, T, C, H, W), as the datasets give them, -> the model's float input, computed on
        the device the clips are on: the one place training, evaluation and inference normalise."""
        return self._normalize(clips).to(dtype)

    @staticmethod
    def class_scores(logits: Any) -> Any:
        """(B, classes) from whatever shape the head returns: VideoPrism's is (B, 1, classes)."""
        return logits.reshape(logits.shape[0], -1)

    def logits(self, model: Any, clips: torch.Tensor) -> torch.Tensor:
        """(B, classes) float32 logits for uint8 (B, T, C, H, W) clips: sent to the model's device as
        uint8, normalised there into its dtype; the forward pass under autocast where `autocast` is set."""
        pixels = self.pixels(clips.to(model.device, non_blocking=True), model.dtype)
        torch._dynamo.maybe_mark_dynamic(pixels, 0)  # a compiled model (infer.compile) keeps one graph for any batch
        with torch.autocast(model.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            logits = model(**self.inputs(pixels)).logits
        return self.class_scores(logits).float()

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Dataset items -> the Trainer's batch: uint8 clips (B, T, C, H, W) under the model's key
        (VideoTrainer normalises them on the device), labels as the task stacks them (class ids (B,);
        multi-label: (B, classes) multi-hot), and the items' dataset indices where they have them. Clips
        that did not decode are left out; an item of k clips (repeated augmentation) gives k rows."""
        examples = [e for e in examples if e["video"] is not None]
        if examples and examples[0]["video"].dim() == 5:  # repeated augmentation: k clips of each video
            examples = [{**e, "video": clip} for e in examples for clip in e["video"]]
        batch = {
            self.input_key: (torch.stack([e["video"] for e in examples]) if examples
                             else torch.empty(0, dtype=torch.uint8)),
            "labels": self.task.stack([e["label"] for e in examples]),
        }
        if examples and "index" in examples[0]:
            batch["index"] = torch.tensor([e["index"] for e in examples], dtype=torch.long)
        return batch


def fine_tuning_overrides(checkpoint_config: Any, train: TrainConfig | None = None) -> dict[str, Any]:
    """Config changes for fine-tuning a checkpoint.

    VideoMAE's self-supervised checkpoints (VideoMAEForPreTraining) say use_mean_pooling: false,
    which makes the classifier read the first token: VideoMAE has no CLS token, so that is one
    16 px patch of the first two frames. The VideoMAE paper fine-tunes on the mean of all tokens
    (and fc_norm), so that is what a new head gets. train.drop_path sets the architecture's
    drop_path_rate, where it has one."""
    overrides: dict[str, Any] = {}
    pretraining = "VideoMAEForPreTraining" in (getattr(checkpoint_config, "architectures", None) or [])
    if checkpoint_config.model_type == "videomae" and pretraining and not checkpoint_config.use_mean_pooling:
        print("note: fine-tuning a VideoMAE pretraining checkpoint with mean pooling (use_mean_pooling: true), "
              "as the VideoMAE paper does", file=sys.stderr)
        overrides["use_mean_pooling"] = True
    if train is not None and train.drop_path > 0:
        if not hasattr(checkpoint_config, "drop_path_rate"):
            raise UserError(f"train.drop_path: transformers' {checkpoint_config.model_type} has no stochastic depth "
                            "(config drop_path_rate; timesformer and vjepa2 have it): set train.drop_path: 0")
        overrides["drop_path_rate"] = train.drop_path
    return overrides


def head_modules(model: Any) -> list[str]:
    """The names of the classification model's own modules outside its backbone (the head: VideoMAE's fc_norm
    and classifier, V-JEPA 2's attentive pooler and classifier, VideoPrism's head, head_layernorm and
    classifier). The backbone is the module transformers names `base_model_prefix`."""
    return [name for name, _ in model.named_children() if name != model.base_model_prefix]


def backbone(model: Any) -> Any:
    """The classification model's backbone module (its base model)."""
    return getattr(model, model.base_model_prefix)


# a numbered block in a stack: "videomae.encoder.layer.3.", "vision_model.temporal_layers.1.",
# V-JEPA 2's "pooler.self_attention_layers.0."
_ENCODER_LAYER = re.compile(r"^(?P<stack>.*?layers?)\.(?P<index>\d+)\.")


def layer_depths(model: Any) -> tuple[dict[str, int], int]:
    """Each parameter's depth for layer-wise learning-rate decay, and the top depth.

    0: everything before the first numbered layer (the embeddings); 1..L: the layers, stack after
    stack in the order the model holds them (VideoPrism: spatial, then temporal; V-JEPA 2: encoder,
    then its attentive pooler); L + 1: everything after (final norm, head)."""
    names = [name for name, _ in model.named_parameters()]
    stacks: dict[str, int] = {}  # encoder stack -> its number of layers, in order
    for name in names:
        match = _ENCODER_LAYER.match(name)
        if match:
            stacks[match["stack"]] = max(stacks.get(match["stack"], 0), int(match["index"]) + 1)
    if not stacks:
        raise UserError(f"train.layer_decay: no numbered layers found in {model.config.model_type}: "
                        "set train.layer_decay: 1")
    offsets, total = {}, 0
    for stack, count in stacks.items():
        offsets[stack], total = total, total + count
    depths, seen_layer = {}, False
    for name in names:
        match = _ENCODER_LAYER.match(name)
        if match:
            seen_layer = True
            depths[name] = offsets[match["stack"]] + int(match["index"]) + 1
        else:
            depths[name] = total + 1 if seen_layer else 0
    return depths, total + 1


def record_in_config(model_config: Any, spec: ModelSpec) -> None:
    """Keep in the saved config.json what inference needs: the frame stride, and the frame count under
    the name transformers' pipeline reads (`num_frames`; V-JEPA 2 calls it frames_per_clip)."""
    model_config.sample_rate = spec.preprocess.sample_rate
    if spec.preprocess.whole_video:
        model_config.clip_sampling = "whole_video"
    if getattr(model_config, "num_frames", None) is None:
        model_config.num_frames = spec.preprocess.num_frames


def vision_part(model_config: Any) -> Any:
    """The config that describes the video side: a text-video model's `vision_config` (X-CLIP keeps its
    frame count and input size there), else the config itself."""
    return getattr(model_config, "vision_config", None) or model_config


def frames_per_clip(model_config: Any) -> int:
    """Frames the model takes per clip: `num_frames`, or V-JEPA 2's `frames_per_clip` (X-CLIP: its
    vision_config's num_frames)."""
    for name in ("num_frames", "frames_per_clip"):
        value = getattr(vision_part(model_config), name, None)
        if value:
            return int(value)
    raise UserError(f"the checkpoint's config ({model_config.model_type}) names no frame count "
                    "(num_frames or frames_per_clip): it is not a video model")


def model_input_size(model_config: Any) -> int | None:
    """The square input size the position embeddings were built for, where the config states one."""
    for name in ("image_size", "crop_size"):
        value = getattr(vision_part(model_config), name, None)
        if isinstance(value, int):
            return value
    return None


def trained_stride(model_config: Any, fallback: int | None) -> int:
    """The frame stride a model was trained with: train.py stores it in model.config; `fallback`
    (data.sample_rate) for models trained elsewhere."""
    stride = getattr(model_config, "sample_rate", None) or fallback
    if stride is None:
        raise UserError("the model's config.json has no sample_rate: pass --set data.sample_rate=N")
    return int(stride)


def describe(model: Any, processor: Any, sample_rate: int, train: TrainConfig | None = None,
             whole_video: bool | None = None) -> ModelSpec:
    """The description of `model` (loaded) with `processor`, at `sample_rate`; `train` adds augmentation.
    `whole_video` (data.sampling): clips spread over whole videos; None: as the model was trained
    (model.config.clip_sampling, which record_in_config writes). A text-video model's processor (X-CLIP's:
    a tokenizer and an image processor) is read through its video_processor."""
    config = model.config
    frames_processor = getattr(processor, "video_processor", None) or processor
    size, crop = frames_processor.size, getattr(frames_processor, "crop_size", None)
    resize_to = None
    if getattr(size, "shortest_edge", None):
        shortest = int(size.shortest_edge)
        use_crop = (getattr(frames_processor, "do_center_crop", True) and crop is not None
                    and getattr(crop, "height", None))
        crop_hw = (int(crop.height), int(crop.width)) if use_crop else (shortest, shortest)
    elif getattr(size, "height", None):  # resized to exactly this size, aspect not kept (LLaVA-OneVision's)
        resize_to = crop_hw = (int(size.height), int(size.width))
        shortest = min(resize_to)
    else:
        raise UserError(f"the checkpoint's processor has no usable size ({size}): expected shortest_edge or height/width")
    expected = model_input_size(config)
    if expected is not None and crop_hw != (expected, expected):
        # the position embeddings fix the input size: follow the model, keep the processor's resize ratio
        print(f"note: the processor gives {crop_hw[0]}x{crop_hw[1]} px inputs, the model takes "
              f"{expected}x{expected}: using {expected}", file=sys.stderr)
        shortest = round(shortest * expected / min(crop_hw))
        resize_to = (expected, expected) if resize_to else None
        crop_hw = (expected, expected)
    mean, std = normalisation(processor, crop_hw)
    augment = train or TrainConfig(horizontal_flip=False, min_scale=1.0, max_scale=1.0)
    preprocess = PreprocessSpec(
        num_frames=frames_per_clip(config),
        sample_rate=sample_rate,
        resize_shortest_edge=shortest,
        crop_size=crop_hw,
        mean=mean,
        std=std,
        min_scale=augment.min_scale,
        max_scale=augment.max_scale,
        horizontal_flip=augment.horizontal_flip,
        rand_augment=(augment.rand_augment.num_ops, augment.rand_augment.magnitude) if augment.rand_augment else None,
        random_erasing=augment.random_erasing,
        repeated_augmentation=augment.repeated_augmentation,
        whole_video_clips=augment.whole_video_clips,
        resize_to=resize_to,
        interpolation=_INTERPOLATION.get(int(getattr(frames_processor, "resample", 2) or 2),
                                         InterpolationMode.BILINEAR),
        whole_video=(getattr(config, "clip_sampling", None) == "whole_video") if whole_video is None else whole_video,
    )
    return ModelSpec(
        model_type=config.model_type,
        input_key=model.main_input_name,
        preprocess=preprocess,
        id2label={int(i): label for i, label in (config.id2label or {}).items()},
        task=task_for(config),
    )


def normalisation(processor: Any, crop_hw: tuple[int, int]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The processor's rescale and normalise, as (mean, std) of `(x / 255 - mean) / std`.

    Runs the processor on a black and a white uniform frame (uniform frames come through any
    resize and crop unchanged) and reads the affine map per channel: out = a x + b, so
    std = 1 / (255 a) and mean = -b std. ViViT's x / 127.5 - 1, then (x - 0.5) / 0.5, comes out
    as mean 0.75, std 0.25."""
    frames = np.zeros((2, *crop_hw, 3), np.uint8)
    frames[1] = 255
    output = processor(videos=[frames], return_tensors="pt", do_sample_frames=False)
    pixels = next(v for v in output.values() if torch.is_tensor(v) and v.ndim == 5)[0].double()  # (T, C, H, W)
    black, white = pixels[0].flatten(1), pixels[1].flatten(1)  # (C, H x W)
    if (black.amax(1) - black.amin(1)).max() > 1e-5 or (white.amax(1) - white.amin(1)).max() > 1e-5:
        raise UserError(f"the checkpoint's processor ({type(processor).__name__}) does not normalise each channel "
                        "uniformly: it cannot be described as mean/std")
    a = (white[:, 0] - black[:, 0]) / 255
    b = black[:, 0]
    std = 1 / (255 * a)
    return tuple(float(m) for m in -b * std), tuple(float(s) for s in std)


def save_image_processor(video_processor: Any, model_type: str, folder: Any) -> None:
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


# Tiny random models, one builder per architecture: the offline demo's and the tests' "pretrained"
# checkpoints. Each returns the backbone (saved; a classification head is added when it is
# loaded for training, as for a real checkpoint) and its processor.
def _square(size: int) -> dict[str, Any]:
    """Processor sizes for square inputs: the short side resized to `size`, then a centre crop of it."""
    return {"size": {"shortest_edge": size}, "crop_size": {"height": size, "width": size}}


def _tiny_videomae(t: TinyModelConfig) -> tuple[Any, Any]:
    config = transformers.VideoMAEConfig(
        image_size=t.image_size, patch_size=t.patch_size, num_frames=t.num_frames, tubelet_size=t.tubelet_size,
        hidden_size=t.hidden_size, num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        intermediate_size=t.intermediate_size, use_mean_pooling=True,
    )
    processor = transformers.VideoMAEVideoProcessor(**_square(t.image_size))
    return transformers.VideoMAEModel(config), processor


def _tiny_timesformer(t: TinyModelConfig) -> tuple[Any, Any]:
    config = transformers.TimesformerConfig(
        image_size=t.image_size, patch_size=t.patch_size, num_frames=t.num_frames, hidden_size=t.hidden_size,
        num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        intermediate_size=t.intermediate_size,
    )
    processor = transformers.TimesformerVideoProcessor(**_square(t.image_size))
    return transformers.TimesformerModel(config), processor


def _tiny_vivit(t: TinyModelConfig) -> tuple[Any, Any]:
    config = transformers.VivitConfig(
        image_size=t.image_size, num_frames=t.num_frames, tubelet_size=[t.tubelet_size, t.patch_size, t.patch_size],
        hidden_size=t.hidden_size, num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        intermediate_size=t.intermediate_size,
    )
    processor = transformers.VivitVideoProcessor(**_square(t.image_size))
    return transformers.VivitModel(config), processor


def _tiny_vjepa2(t: TinyModelConfig) -> tuple[Any, Any]:
    config = transformers.VJEPA2Config(
        crop_size=t.image_size, patch_size=t.patch_size, frames_per_clip=t.num_frames, tubelet_size=t.tubelet_size,
        hidden_size=t.hidden_size, num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        mlp_ratio=t.intermediate_size / t.hidden_size,
        # the predictor is for self-supervised pretraining; keep it as small as the encoder
        pred_hidden_size=t.hidden_size, pred_num_attention_heads=t.num_attention_heads, pred_num_hidden_layers=1,
        num_pooler_layers=1,
    )
    processor = transformers.VJEPA2VideoProcessor(**_square(t.image_size))
    return transformers.VJEPA2Model(config), processor


def _tiny_videoprism(t: TinyModelConfig) -> tuple[Any, Any]:
    config = transformers.VideoPrismVisionConfig(
        image_size=t.image_size, num_frames=t.num_frames, tubelet_size=[1, t.patch_size, t.patch_size],
        hidden_size=t.hidden_size, num_attention_heads=t.num_attention_heads, intermediate_size=t.intermediate_size,
        num_spatial_layers=t.num_hidden_layers, num_temporal_layers=1,
    )
    # transformers gives VideoPrism LLaVA-OneVision's video processor: a square resize, CLIP statistics
    processor = transformers.LlavaOnevisionVideoProcessor(size={"height": t.image_size, "width": t.image_size})
    return transformers.VideoPrismVisionModel(config), processor


TINY_BUILDERS: dict[str, Callable[[TinyModelConfig], tuple[Any, Any]]] = {
    "videomae": _tiny_videomae,
    "timesformer": _tiny_timesformer,
    "vivit": _tiny_vivit,
    "vjepa2": _tiny_vjepa2,
    "videoprism": _tiny_videoprism,
}
assert set(TINY_BUILDERS) == set(ARCHITECTURES)


def tiny_model(tiny: TinyModelConfig, seed: int) -> tuple[Any, Any]:
    """A randomly initialised backbone of `tiny.architecture` and its processor."""
    torch.manual_seed(seed)
    return TINY_BUILDERS[tiny.architecture](tiny)
