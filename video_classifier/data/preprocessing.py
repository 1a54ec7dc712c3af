"""The one definition of clip sampling and transforms, used by train, evaluation and inference.

A clip is the frames whose timestamps fall in [start, end) seconds, with
end - start = num_frames x sample_rate / fps, and `num_frames` of them spread
evenly: the arithmetic of pytorchvideo's PyAV path, so every decoder sees the
frames the reference sees.

Every constant comes from the checkpoint, read once by model_spec.describe:
mean, std, resize and crop sizes and the resize filter from its processor,
`num_frames` from `model.config`; only the frame stride (`data.sample_rate`)
and the augmentation ranges come from our config.

Layouts: pytorchvideo gives (C, T, H, W) float holding whole numbers in
[0, 255]; our decoders give the sampled frames as (T, C, H, W) uint8. Both are
resized and cropped as uint8 (exactly, since pytorchvideo's floats are whole
numbers) into (T, C, H, W) uint8: the layout every video classifier in
transformers takes per video. Clips stay uint8 through the DataLoader and onto
the model's device; `Normalize` turns a whole batch into the model's float
input there, once (ModelSpec.pixels), for training, evaluation and inference
alike. The CPU workers no longer convert each clip to float, and host-to-device
copies carry a quarter of float32's bytes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

from .augment import ClipAugment


@dataclass(frozen=True)
class PreprocessSpec:
    num_frames: int  # frames the model takes per clip
    sample_rate: int  # keep every sample_rate-th frame of the video
    resize_shortest_edge: int
    crop_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    min_scale: float = 1.0  # train only: random short side in [min, max] x the crop's short side
    max_scale: float = 1.0
    horizontal_flip: bool = False
    # (height, width) to resize every frame to, aspect not kept, instead of the short side
    # (processors with size {height, width} and no crop, as LLaVA-OneVision's for VideoPrism)
    resize_to: tuple[int, int] | None = None
    interpolation: InterpolationMode = InterpolationMode.BILINEAR  # the processor's `resample`
    # data.sampling: whole_video: a clip is num_frames spread over the whole video (sample_rate unused)
    whole_video: bool = False
    # train only (augment.py): RandAugment's (num_ops, magnitude of 10), random erasing's probability, and
    # the clips made from each decoded window (repeated augmentation)
    rand_augment: tuple[int, int] | None = None
    random_erasing: float = 0.0
    repeated_augmentation: int = 1
    # train only: the share of training clips that spread num_frames over the whole video, as transformers'
    # stock pipeline samples (the others: windows of num_frames x sample_rate)
    whole_video_clips: float = 0.0

    def for_clip(self, draw: Callable[[], float]) -> "PreprocessSpec":
        """The spec one training clip is sampled with: whole-video for a `whole_video_clips` share of the
        draws (`draw`: a uniform number in [0, 1)), else this one. No draw when the share is 0."""
        if not self.whole_video_clips or self.whole_video or draw() >= self.whole_video_clips:
            return self
        return dataclasses.replace(self, whole_video=True)

    def clip_duration(self, fps: float) -> Fraction:
        """Seconds one clip window covers, exactly: 16 frames x stride 4 at 25 fps = 64/25 s = 2.56 s."""
        return Fraction(self.num_frames * self.sample_rate) / exact_fps(fps)

    def clip_span(self, duration: float, fps: float) -> Fraction:
        """Seconds one clip of a video of `duration` covers: the window, or the whole video."""
        return Fraction(duration) if self.whole_video else self.clip_duration(fps)

    def jittered_span(self, duration: float, fps: float, max_stride: float | None,
                      uniform: Callable[[float, float], float]) -> Fraction:
        """A training clip's span under temporal-scale jitter: its stride drawn by `uniform` from
        [sample_rate, max_stride] (as a fraction of denominator <= 1000), the window stretched to match;
        clip_span where `max_stride` is None or the clip spans the whole video (no draw then). Map-style and
        streamed training draw it alike."""
        length = self.clip_span(duration, fps)
        if not max_stride or self.whole_video:
            return length
        stride = uniform(self.sample_rate, max_stride)
        return length * Fraction(stride).limit_denominator(1000) / self.sample_rate

    def frame_indices(self, start: Fraction, end: Fraction, fps: float, total: int) -> list[int]:
        """The frames of the clip [start, end) of a video of `total` frames: clip_frame_indices, or with
        whole_video the frames transformers' video processors sample over a whole video
        (video_utils.default_sample_indices_fn: k x total // num_frames), so that our clip is theirs."""
        if self.whole_video:
            return [min(k * total // self.num_frames, total - 1) for k in range(self.num_frames)]
        return clip_frame_indices(start, end, exact_fps(fps), total, self.num_frames)


def exact_fps(fps: float) -> Fraction:
    """The frame rate as a fraction (29.97 -> 30000/1001), so clip bounds land on whole frames."""
    return Fraction(fps).limit_denominator(1001)


def clip_frame_indices(start: Fraction, end: Fraction, fps: Fraction, total: int, num_frames: int) -> list[int]:
    """Frames of a constant-rate video in [start, end) seconds, subsampled evenly to `num_frames`.

    pytorchvideo keeps frames with pts in [ceil(start / time_base), ceil(end / time_base)),
    then UniformTemporalSubsample takes linspace(0, T - 1, num_frames), truncated."""
    first = min(math.ceil(start * fps), total - 1)
    stop = max(min(math.ceil(end * fps), total), first + 1)
    picks = torch.linspace(0, stop - first - 1, num_frames).clamp(0, stop - first - 1).long()
    return (first + picks).tolist()


def uniform_clip_starts(duration: float, clip: Fraction) -> list[Fraction]:
    """Back-to-back clips from 0 while a whole clip fits (at least one), as pytorchvideo's uniform sampler."""
    starts = [Fraction(0)]
    while starts[-1] + 2 * clip <= Fraction(duration):
        starts.append(starts[-1] + clip)
    return starts


def spread_clip_starts(duration: float, clip: Fraction, num_clips: int) -> list[Fraction]:
    """`num_clips` clip starts spread evenly from the first frame to the last (one: the centre clip).

    The test views of the VideoMAE paper and MMAction2 (5 clips x 3 crops)."""
    room = max(Fraction(duration) - clip, Fraction(0))
    if num_clips == 1:
        return [room / 2]
    return [room * i / (num_clips - 1) for i in range(num_clips)]


def crop_offsets(length: int, crop: int, num_crops: int) -> list[int]:
    """Offsets of `num_crops` crops spread along a side (one: centred as torchvision's CenterCrop)."""
    room = max(length - crop, 0)
    if num_crops == 1:
        return [int(round(room / 2.0))]
    return [int(round(room * i / (num_crops - 1))) for i in range(num_crops)]


def temporal_subsample(video: torch.Tensor, num_frames: int) -> torch.Tensor:
    """`num_frames` evenly spaced frames of (C, T, H, W), as pytorchvideo's UniformTemporalSubsample."""
    t = video.shape[1]
    if t == 0:
        raise ValueError("empty clip: the decoder returned no frames")
    index = torch.linspace(0, t - 1, num_frames).clamp(0, t - 1).long()
    return video.index_select(1, index)


class Normalize:
    """uint8 (..., C, H, W) -> float32 (x / 255 - mean) / std, on the device the frames are on, once per
    batch: a cast, then a multiply and an add in place. Kept as two roundings, not one fused
    multiply-add, so the values are bit for bit those of the CPU path that normalised clip by clip
    (a 1-ulp change is enough to move a seeded small run's accuracy by points)."""

    def __init__(self, spec: PreprocessSpec):
        std, mean = torch.tensor(spec.std), torch.tensor(spec.mean)
        self.scale = (1 / (255 * std)).view(3, 1, 1)
        self.shift = (-mean / std).view(3, 1, 1)
        self._on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}  # constants per device, copied once

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dtype != torch.uint8:
            raise TypeError(f"Normalize takes uint8 frames (as the datasets give them), got {frames.dtype}")
        if frames.device not in self._on:
            self._on[frames.device] = (self.scale.to(frames.device), self.shift.to(frames.device))
        scale, shift = self._on[frames.device]
        return frames.to(torch.float32).mul_(scale).add_(shift)


class RandomScaleCrop:
    """Training's spatial augmentation on (T, C, H, W) uint8: a random short side in
    [min_scale, max_scale] x the crop (as the guide's RandomShortSideScale), a random crop of
    crop_size, an optional horizontal flip; one draw for all frames.

    The crop's box is mapped back to the source and only that box is resized: the same
    augmentation as resizing the whole frame and then cropping (up to rounding of the box to
    whole pixels), at about half the cost."""

    def __init__(self, spec: PreprocessSpec):
        self.spec = spec
        short_crop = min(spec.crop_size)
        self.sizes = (round(short_crop * spec.min_scale), round(short_crop * spec.max_scale))

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        (height, width), (crop_h, crop_w) = frames.shape[-2:], self.spec.crop_size
        scaled_short_side = int(torch.randint(self.sizes[0], self.sizes[1] + 1, ()))
        if self.spec.resize_to is None:
            factor = scaled_short_side / min(height, width)
            box_h, box_w = min(height, round(crop_h / factor)), min(width, round(crop_w / factor))
        else:  # frames squashed to resize_to x scale, then cropped: the box covers 1 / scale of each side
            scale = scaled_short_side / min(crop_h, crop_w)
            box_h, box_w = min(height, round(height / scale)), min(width, round(width / scale))
        top = int(torch.randint(0, height - box_h + 1, ()))
        left = int(torch.randint(0, width - box_w + 1, ()))
        frames = F.resized_crop(frames, top, left, box_h, box_w, [crop_h, crop_w],
                                interpolation=self.spec.interpolation, antialias=True)
        if self.spec.horizontal_flip and torch.rand(()) < 0.5:
            frames = frames.flip(-1)
        return frames


class ClipTransform:
    """(C, T, H, W) float in [0, 255] -> (T, C, H, W) uint8 at the model's size, for training or evaluation."""

    def __init__(self, spec: PreprocessSpec, train: bool):
        self.spec, self.train = spec, train
        self.spatial = RandomScaleCrop(spec)
        self.appearance = ClipAugment(spec.rand_augment, spec.random_erasing, spec.mean, spec.std)
        # evaluation: the centre view of MultiCropTransform, what the processor does
        # (shortest edge to `size`, then a centre crop)
        self.centre_view = MultiCropTransform(spec, num_crops=1)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """A decoded window (C, T, H, W), as pytorchvideo gives it: subsample, then `frames`."""
        video = temporal_subsample(video, self.spec.num_frames)
        # (C, T, H, W) -> (T, C, H, W); whole numbers in [0, 255], so uint8 is exact
        return self.frames(video.permute(1, 0, 2, 3).round().clamp(0, 255).to(torch.uint8))

    def frames(self, frames: torch.Tensor) -> torch.Tensor:
        """The sampled frames (T, C, H, W) uint8 -> (T, C, h, w) uint8, cropped to the model's size."""
        if not self.train:
            return self.centre_view(frames)[0]
        # torchvision treats T as a batch: one scale, crop and flip for all frames; then one RandAugment and
        # erasing draw for the whole clip
        return self.appearance(self.spatial(frames)).contiguous()

    def repeated(self, frames: torch.Tensor) -> torch.Tensor:
        """Training's clip(s) of one decoded window: `frames` alone, or (k, T, C, h, w) of k augmented clips
        with repeated augmentation (each its own crop, flip, RandAugment and erasing draw)."""
        k = self.spec.repeated_augmentation
        if k == 1 or not self.train:
            return self.frames(frames)
        return torch.stack([self.frames(frames) for _ in range(k)])


class MultiCropTransform:
    """Evaluation views of one clip: resize the short side, then `num_crops` crops along the long side
    (left/centre/right, or top/centre/bottom). (T, C, H, W) uint8 -> (num_crops, T, C, h, w) uint8.
    One crop is ClipTransform's evaluation output. With `resize_to`, frames are resized to exactly
    that size and the crops are all that one view."""

    def __init__(self, spec: PreprocessSpec, num_crops: int):
        self.spec, self.num_crops = spec, num_crops
        size = list(spec.resize_to) if spec.resize_to else spec.resize_shortest_edge
        self.resize = v2.Resize(size, interpolation=spec.interpolation, antialias=True)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        video = self.resize(tv_tensors.Video(frames)).as_subclass(torch.Tensor)
        (height, width), (crop_h, crop_w) = video.shape[-2:], self.spec.crop_size
        if width - crop_w >= height - crop_h:  # slide along the long side
            tops, lefts = crop_offsets(height, crop_h, 1), crop_offsets(width, crop_w, self.num_crops)
        else:
            tops, lefts = crop_offsets(height, crop_h, self.num_crops), crop_offsets(width, crop_w, 1)
        crops = [video[..., t : t + crop_h, l : l + crop_w] for t in tops for l in lefts]
        return torch.stack(crops)
