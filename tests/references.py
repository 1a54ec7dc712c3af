"""What the parity tests compare with, computed without the project's code: clip frames as pytorchvideo's PyAV
path decodes them, every frame as FFmpeg's command line decodes it, the evaluation view written from its
definition with torchvision's functional ops, and a checkpoint's scores from its own processor and model,
called as the model cards show."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from pytorchvideo.data.encoded_video import EncodedVideo
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F


def video_timing(path: Path) -> tuple[Fraction, Fraction]:
    """(duration in seconds, average frame rate) as pytorchvideo and PyAV read them."""
    duration = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav").duration
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    return Fraction(duration), Fraction(rate)


def window_frames(path: Path, start: Fraction, end: Fraction, num_frames: int) -> torch.Tensor:
    """The frames of [start, end) s as pytorchvideo's PyAV decoder gives them, `num_frames` of them taken at
    linspace(0, T - 1, num_frames) truncated (UniformTemporalSubsample's definition): (T, C, H, W) uint8."""
    clip = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav").get_clip(start, end)["video"]
    picks = torch.linspace(0, clip.shape[1] - 1, num_frames).long()
    # (C, T, H, W) float holding whole numbers -> (T, C, H, W) uint8
    return clip[:, picks].permute(1, 0, 2, 3).to(torch.uint8)


def spread_windows(duration: Fraction, length: Fraction, num_clips: int) -> list[tuple[Fraction, Fraction]]:
    """`num_clips` windows of `length` s from the video's start to its end, evenly spaced (one: the centre
    one), as the VideoMAE paper's test views are defined."""
    room = max(duration - length, Fraction(0))
    starts = [room / 2] if num_clips == 1 else [room * i / (num_clips - 1) for i in range(num_clips)]
    return [(s, s + length) for s in starts]


def centre_view(frames: torch.Tensor, shortest_edge: int, crop: tuple[int, int],
                interpolation: InterpolationMode = InterpolationMode.BILINEAR) -> torch.Tensor:
    """(T, C, H, W) uint8 -> the short side resized to `shortest_edge` (antialiased, as PIL), then the centre
    `crop` (height, width): torchvision's functional ops, nothing of ours."""
    return F.center_crop(F.resize(frames, [shortest_edge], interpolation=interpolation, antialias=True), list(crop))


def processor_logits(model: Any, processor: Any, clip: torch.Tensor) -> torch.Tensor:
    """(classes,) float logits of one clip (T, C, H, W) uint8, as a model card runs a checkpoint: the video as a
    list of (H, W, C) frames through its processor, then model(**inputs).logits."""
    inputs = processor(list(clip.permute(0, 2, 3, 1).numpy()), return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits.reshape(-1).float()


def ffmpeg_frames(path: Path, count: int | None = None) -> np.ndarray:
    """Every frame of `path` (or its first `count`) as FFmpeg's command line decodes it to RGB, as stored (not
    turned by a rotation): (N, H, W, 3) uint8. The frame size is read with PyAV (the size FFmpeg writes when no
    filter scales it). `-fps_mode passthrough` (FFmpeg 5.1 on) keeps each decoded frame once, with none
    repeated or dropped for a constant output rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
    first = ["-frames:v", str(count)] if count else []
    raw = subprocess.run(["ffmpeg", "-v", "error", "-noautorotate", "-i", str(path), "-map", "0:v:0", *first,
                          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
