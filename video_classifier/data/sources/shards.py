"""data.source shards: the tar shards `prepare_data.py --shards` wrote (shards.py), read where they are (a
folder or a URL): nothing is prepared; training streams them, evaluation reads each video's byte range."""

from __future__ import annotations

import torch

from ...core.config import DataConfig
from ...core.task import Task
from ..clips import DecodeFailures
from ..decoding import Decoding
from ..manifest import VideoRecord
from ..preprocessing import PreprocessSpec
from ..shards import ShardClipDataset, describe_shards
from .base import Source


class Shards(Source):
    name = "shards"
    refuses = ("the pytorchvideo backend and the class-balanced sampler: training streams, and each video is read "
               "once per epoch")
    stream_setting = "data.source: shards"

    def in_place(self, data: DataConfig) -> str | None:
        return describe_shards(data.root)

    def streams(self, data: DataConfig) -> bool:
        return True

    def training_stream(self, data: DataConfig, records: list[VideoRecord], label2id: dict[str, int],
                        spec: PreprocessSpec, decoding: Decoding, failures: DecodeFailures | None,
                        task: Task, max_stride: float | None = None) -> tuple[torch.utils.data.IterableDataset, str]:
        describe_shards(data.root)  # the index and a shard per split read: one line naming one that does not
        dataset = ShardClipDataset(data.root, records, label2id, spec, train=True, decoder=decoding.decode,
                                   shuffle_buffer=data.shuffle_buffer, failures=failures, task=task,
                                   max_stride=max_stride)
        return dataset, (f"ShardClipDataset streaming {len(dataset.shards)} training shards from {data.root} "
                         f"(shuffle buffer {data.shuffle_buffer} videos), {decoding.describe()}")
