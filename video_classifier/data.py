"""Datasets over a prepared folder, through pytorchvideo's LabeledVideoDataset (PyAV decoding)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler

from .prepare import VideoRecord
from .preprocessing import ClipTransform, PreprocessSpec


class _ApplyToVideo:
    """pytorchvideo item -> {"video", "label"}, the video transformed; picklable for workers."""

    def __init__(self, transform: ClipTransform):
        self.transform = transform

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"video": self.transform(item["video"]), "label": item["label"]}


def common_fps(records: list[VideoRecord]) -> float:
    """The frame rate most videos share (UCF101: 25 fps); the clip duration is computed from it."""
    return Counter(round(r.fps, 3) for r in records).most_common(1)[0][0]


def make_dataset(
    records: list[VideoRecord], root: str | Path, label2id: dict[str, int], spec: PreprocessSpec, train: bool
) -> LabeledVideoDataset:
    """One random clip per video per pass for training; every consecutive clip, in order, for evaluation."""
    fps = common_fps(records)
    duration = spec.clip_duration(fps)
    paths = [(str(Path(root) / r.path), {"label": label2id[r.label]}) for r in records]
    return LabeledVideoDataset(
        labeled_video_paths=paths,
        clip_sampler=make_clip_sampler("random" if train else "uniform", duration),
        video_sampler=torch.utils.data.RandomSampler if train else torch.utils.data.SequentialSampler,
        transform=_ApplyToVideo(ClipTransform(spec, train=train)),
        decode_audio=False,
        decoder="pyav",
    )
