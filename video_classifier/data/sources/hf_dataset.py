"""data.source hf_dataset: a dataset the `datasets` library reads (hf_source.py), listed as your videos are
(checked, split by group unless its splits are mapped); with `data.hf_dataset.streaming` the train split
streams through `datasets` and is probed as it streams."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ...core.config import DataConfig
from ...core.errors import UserError
from ...core.task import Task
from ..clips import DecodeFailures
from ..decoding import Decoding
from ..hf_source import HfStreamClipDataset, dataset_videos, write_stream
from ..manifest import VideoRecord
from ..preprocessing import PreprocessSpec
from .base import Source
from .folder import user_video_records


class HfDataset(Source):
    name = "hf_dataset"
    refuses = ("with streaming: videos stored as bytes (a stream keeps no files), cached features and the "
               "class-balanced sampler (the training videos are read only as they stream)")

    stream_setting = "data.hf_dataset.streaming"

    def check(self, data: DataConfig) -> None:
        if data.hf_dataset is None:
            raise UserError("data.hf_dataset is not set: source 'hf_dataset' needs data.hf_dataset.path "
                            "(a Hub dataset id or a local folder)")
        super().check(data)

    def record(self, data: DataConfig) -> dict[str, Any]:
        hf = data.hf_dataset
        path = str(Path(hf.path).expanduser().resolve()) if Path(hf.path).expanduser().exists() else hf.path
        return {"hf_dataset": {**asdict(hf), "path": path}, "split_fractions": data.split_fractions,
                "group_pattern": data.group_pattern, "split_seed": data.split_seed}

    def prepare(self, data: DataConfig, out: Path, full: bool) -> tuple[list[VideoRecord], bool]:
        listed, stream = dataset_videos(data)
        # a streamed train split is probed as it streams (hf_source.py)
        records, multi_label = user_video_records(data, out, full, listed, data.hf_dataset.path,
                                                  unprobed=("train",) if stream else ())
        if stream:
            write_stream(stream, out)
        return records, multi_label

    def streams(self, data: DataConfig) -> bool:
        return data.hf_dataset.streaming

    def probes_training_videos(self, data: DataConfig) -> bool:
        return not data.hf_dataset.streaming

    def training_stream(self, data: DataConfig, records: list[VideoRecord], label2id: dict[str, int],
                        spec: PreprocessSpec, decoding: Decoding, failures: DecodeFailures | None,
                        task: Task, max_stride: float | None = None) -> tuple[torch.utils.data.IterableDataset, str]:
        # training streams through `datasets`; evaluation reads the val and test videos by byte ranges
        dataset = HfStreamClipDataset(data.root, records, label2id, spec, train=True, decoder=decoding.decode,
                                      shuffle_buffer=data.shuffle_buffer, failures=failures, task=task,
                                      max_stride=max_stride)
        return dataset, f"{dataset.describe()}, {decoding.describe()}"
