"""Datasets over a prepared folder.

`ClipDataset` (backend "native") is map-style: it has a length, so epochs,
the Trainer's samplers and resuming work as for any dataset, and it decodes
only the frames a clip needs. pytorchvideo's LabeledVideoDataset (backend
"pytorchvideo", PyAV) is the reference it is tested against.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler

from ..core.config import DataConfig
from ..core.errors import DecodeError, UserError
from ..core.task import SingleLabel, Task
from .clips import DecodeFailures, decode_clip, readable
from .decoding import Decoder, announce, choose_decoder
from .manifest import VideoRecord
from .preprocessing import ClipTransform, MultiCropTransform, PreprocessSpec, spread_clip_starts, uniform_clip_starts
from .records import RecordTable
from .sources import source_of
from .storage import video_source


class ClipItems:
    """ClipDataset's items as (video, clip index, clip start): training, one per video with no start (drawn anew
    on every access); evaluation, every uniform clip of every video. Held as two integer arrays, each start
    computed again when asked for, so that a million items cost no Python objects in the workers."""

    def __init__(self, records: RecordTable, spec: PreprocessSpec, train: bool):
        self.records, self.spec, self.train = records, spec, train
        if train:
            self.video = self.clip = None
        else:
            counts = np.fromiter((len(uniform_clip_starts(float(d), spec.clip_span(float(d), float(f))))
                                  for d, f in zip(records.duration, records.fps)), np.int64, len(records))
            self.video = np.repeat(np.arange(len(records)), counts)
            self.clip = np.arange(len(self.video)) - np.repeat(np.cumsum(counts) - counts, counts)

    def __len__(self) -> int:
        return len(self.records) if self.train else len(self.video)

    def __getitem__(self, index: int) -> tuple[int, int, Fraction | None]:
        if self.train:
            return int(index), 0, None
        video, clip = int(self.video[index]), int(self.clip[index])
        length = self.spec.clip_span(float(self.records.duration[video]), float(self.records.fps[video]))
        return video, clip, uniform_clip_starts(float(self.records.duration[video]), length)[clip]

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))


class ClipDataset(torch.utils.data.Dataset):
    """One item = one clip of one video: a random clip per video for training, every uniform clip for evaluation.

    Items: {"video": (T, C, H, W) uint8, "label", "video_index", "clip_index", "index"}; "label" is what
    `task.target` makes of the record's label (a class id; multi-label: a multi-hot vector).

    With `failures`, a clip that does not decode is recorded there and, in training, replaced by a
    clip of the next video that decodes; in evaluation its item's "video" is None (left out). Without,
    the error is raised, naming the file."""

    def __init__(self, records: list[VideoRecord], root: str | Path, label2id: dict[str, int],
                 spec: PreprocessSpec, train: bool, decoder: Decoder, max_stride: float | None = None,
                 failures: DecodeFailures | None = None, task: Task = SingleLabel()):
        self.records, self.root, self.label2id, self.task = records, root, label2id, task
        self.spec, self.train, self.decode, self.failures = spec, train, decoder, failures
        # training only: each clip's stride drawn from [spec.sample_rate, max_stride] (temporal-scale jitter)
        self.max_stride = max_stride if train and max_stride and max_stride > spec.sample_rate else None
        self.transform = ClipTransform(spec, train=train)
        self.records = RecordTable.of(records)  # arrays: DataLoader workers share them, never copy them
        self.items = ClipItems(self.records, spec, train)

    def __len__(self) -> int:
        return len(self.items)

    def window(self, index: int, spec: PreprocessSpec | None = None) -> tuple[Fraction, Fraction]:
        """The clip's [start, end) in seconds (`spec`: the clip's own, PreprocessSpec.for_clip)."""
        video, _, start = self.items[index]
        record = self.records[video]
        spec = spec or self.spec
        length = spec.jittered_span(record.duration, record.fps, self.max_stride,
                                    random.uniform)
        if start is None:  # training, as pytorchvideo's RandomClipSampler
            start = Fraction(random.uniform(0, max(record.duration - float(length), 0)))
        return start, start + length

    def __getitem__(self, index: int) -> dict[str, Any]:
        video, clip, _ = self.items[index]
        # training: a video that does not decode gives way to the next one (the items are the videos)
        tries = len(self) if self.train and self.failures else 1
        for item in ((index + k) % len(self) for k in range(tries)):
            video = self.items[item][0]
            record = self.records[video]
            if self.failures and self.failures.dropped(record):
                continue
            spec = self.spec.for_clip(random.random) if self.train else self.spec
            start, end = self.window(item, spec)
            indices = record.clip_indices(spec, start, end)
            try:
                decoded = decode_clip(self.decode, video_source(self.root, record.path), indices, record.fps)
            except DecodeError as err:
                if self.failures is None:
                    raise
                self.failures.add(record, err, "its clips are replaced by other videos' in training" if self.train
                                  else "left out of the evaluation")
                continue
            frames = self.transform.repeated(decoded)  # training with repeated augmentation: k clips
            return {"video": frames, "label": self.task.target(record.label, self.label2id), "video_index": video,
                    "clip_index": clip, "index": index}
        if self.train:
            raise UserError(f"none of the {len(self.records)} training videos decodes (see {self.failures.path}): "
                            "check the files, or prepare the data again")
        return {"video": None, "label": self.task.target(record.label, self.label2id), "video_index": video,
                "clip_index": clip, "index": index}


class ViewDataset(torch.utils.data.Dataset):
    """One item = every evaluation view of one video: `num_clips` clips spread over it x `num_crops` crops.

    Items: {"views": (num_clips x num_crops, T, C, H, W) uint8, "label", "video_index"}; each clip
    is decoded once and cropped `num_crops` times."""

    def __init__(self, records: list[VideoRecord], root: str | Path, label2id: dict[str, int],
                 spec: PreprocessSpec, num_clips: int, num_crops: int, decoder: Decoder,
                 failures: DecodeFailures | None = None, task: Task = SingleLabel()):
        self.records, self.root, self.label2id, self.spec, self.task = RecordTable.of(records), root, label2id, spec, task
        self.num_clips, self.decode, self.failures = num_clips, decoder, failures
        self.crops = MultiCropTransform(spec, num_crops)

    def __len__(self) -> int:
        return len(self.records)

    def centre_view(self) -> int | None:
        """The index among a video's views of the centre clip's centre crop, the one view of 1 clip x 1 crop
        (None when the clips or crops are even in number: no view is the centre one)."""
        clips, crops = self.num_clips, self.crops.num_crops
        return (clips // 2) * crops + crops // 2 if clips % 2 and crops % 2 else None

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        length = self.spec.clip_span(record.duration, record.fps)
        clips = []
        try:
            path = readable(self.root, record.path)  # a shard member's bytes read once for all its clips
            for start in spread_clip_starts(record.duration, length, self.num_clips):
                indices = record.clip_indices(self.spec, start, start + length)
                clips.append(decode_clip(self.decode, path, indices, record.fps))
        except DecodeError as err:
            if self.failures is None:
                raise
            self.failures.add(record, err, "left out of the evaluation")
            clips = []  # left out
        views = [self.crops(clip) for clip in clips]
        return {"views": torch.cat(views) if views else None, "label": self.task.target(record.label, self.label2id),
                "video_index": index}


def collate_views(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Videos' views, concatenated: views (videos x views, T, C, H, W); videos that did not decode
    (views None) are left out, video_index says which are in."""
    items = [i for i in items if i["views"] is not None]
    return {
        "views": torch.cat([i["views"] for i in items]) if items else torch.empty(0, dtype=torch.uint8),
        "video_index": torch.tensor([i["video_index"] for i in items], dtype=torch.long),
    }


class _ApplyToVideo:
    """pytorchvideo item -> {"video", "label"}, the video transformed; picklable for workers."""

    def __init__(self, transform: ClipTransform):
        self.transform = transform

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"video": self.transform(item["video"]), "label": item["label"]}


def common_fps(records: list[VideoRecord]) -> float:
    """The frame rate most videos share (UCF101: 25 fps); pytorchvideo takes one clip duration for all."""
    return Counter(round(r.fps, 3) for r in records).most_common(1)[0][0]


def pytorchvideo_dataset(records: list[VideoRecord], root: str | Path, label2id: dict[str, int],
                         spec: PreprocessSpec, train: bool) -> LabeledVideoDataset:
    """The reference: pytorchvideo's iterable dataset with PyAV, decoding every frame of each window."""
    paths = [(str(Path(root) / r.path), {"label": label2id.get(r.label, -1)}) for r in records]
    return LabeledVideoDataset(
        labeled_video_paths=paths,
        clip_sampler=make_clip_sampler("random" if train else "uniform", spec.clip_duration(common_fps(records))),
        video_sampler=torch.utils.data.RandomSampler if train else torch.utils.data.SequentialSampler,
        transform=_ApplyToVideo(ClipTransform(spec, train=train)),
        decode_audio=False,
        decoder="pyav",
    )


def pipeline_stride(records: list[VideoRecord], num_frames: int) -> float:
    """The frame stride of transformers' stock video-classification pipeline on the median video of
    `records`: it takes `num_frames` frames spread over the whole video, `frames / num_frames` apart."""
    return statistics.median(r.frames for r in records) / num_frames


def build_datasets(data: DataConfig, splits: dict[str, list[VideoRecord]], label2id: dict[str, int],
                   spec: PreprocessSpec, max_stride: float | None = None, failures: DecodeFailures | None = None,
                   task: Task = SingleLabel()) -> tuple[dict[str, torch.utils.data.Dataset], str]:
    """A dataset per split ("train" gets random clips, with strides up to `max_stride`, and augmentation),
    and a line saying how they decode."""
    if data.backend == "pytorchvideo":
        if task.name != SingleLabel.name:
            raise UserError("a multi-label run needs data.backend: native (pytorchvideo's dataset takes one "
                            "label per video)")
        if max_stride and max_stride > spec.sample_rate:
            raise UserError("train.max_stride (temporal-scale jitter) needs data.backend: native; "
                            "set train.max_stride: null for the pytorchvideo backend")
        if any(r.start for rows in splits.values() for r in rows):
            raise UserError("segments of recordings (a list with start/end) need data.backend: native "
                            "(pytorchvideo's dataset samples whole files)")
        if spec.whole_video_clips:
            raise UserError("train.whole_video_clips needs data.backend: native (pytorchvideo samples windows); "
                            "set train.whole_video_clips: 0 for the pytorchvideo backend")
        datasets = {s: pytorchvideo_dataset(rows, data.root, label2id, spec, train=s == "train")
                    for s, rows in splits.items()}
        return datasets, "pytorchvideo LabeledVideoDataset, PyAV decoder (every frame of each window)"
    decoding = choose_decoder(data.decoder)
    announce(decoding, already_said=True)  # the caller prints the line returned here
    datasets = {s: ClipDataset(rows, data.root, label2id, spec, train=s == "train", decoder=decoding.decode,
                               max_stride=max_stride, failures=failures, task=task)
                for s, rows in splits.items()}
    source = source_of(data)
    if source.streams(data) and "train" in splits:  # training streams; evaluation as above, map-style
        datasets["train"], how = source.training_stream(data, splits["train"], label2id, spec, decoding, failures,
                                                        task, max_stride)
        return datasets, how
    return datasets, f"native ClipDataset, {decoding.describe()}, only the sampled frames decoded"


def streams_training(data: DataConfig) -> bool:
    """Whether training reads a stream (shards, or a dataset streamed through `datasets`): no length, no
    sampler, no per-video index."""
    return source_of(data).streams(data)
