"""The streaming base that shards.py and hf_source.py share: clips of videos streamed one after another,
each split of the stream by process and DataLoader worker left to the subclass, and the DataLoader such a
stream trains through."""

from __future__ import annotations

import os
import random
from fractions import Fraction
from typing import Any, Iterator

import torch

from ..core.errors import DecodeError
from ..core.task import Task
from .clips import DecodeFailures, decode_clip
from .decoding import Decoder
from .manifest import VideoRecord
from .preprocessing import ClipTransform, PreprocessSpec, uniform_clip_starts
from .storage import InMemoryVideo


def process_rank() -> tuple[int, int]:
    """(this process's rank, processes): torch.distributed's when set up, else torchrun's environment."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class ClipStream(torch.utils.data.IterableDataset):
    """Clips of videos streamed one after another (from shards in shards.py, from a `datasets` stream in
    hf_source.py), each split of the stream by process and DataLoader worker being the subclass's `__iter__`.

    Items as ClipDataset's: {"video": (T, C, H, W) uint8, "label", "video_index", "clip_index", "index"},
    "video_index" the video's row in its split of the manifest (`row`: a video's key -> that row). `train`: one
    random clip per video, with augmentation; otherwise every uniform clip of each video in order, centre crop
    (the items of ClipDataset(train=False), for checks and benchmarks)."""

    splits_by_process = True  # VideoTrainer gives each process its own loader (no re-sharding by accelerate)

    def __init__(self, label2id: dict[str, int], spec: PreprocessSpec, train: bool, decoder: Decoder,
                 shuffle_buffer: int, seed: int | None, failures: DecodeFailures | None, task: Task,
                 max_stride: float | None = None):
        self.label2id, self.spec, self.train, self.decode = label2id, spec, train, decoder
        # training only: each clip's stride drawn from [spec.sample_rate, max_stride], as ClipDataset's
        self.max_stride = max_stride if train and max_stride and max_stride > spec.sample_rate else None
        # seed None: torch's, which train.py has set from train.seed (the same in every process)
        seed = torch.initial_seed() % 2**31 if seed is None else seed
        self.shuffle_buffer, self.seed, self.failures, self.task = shuffle_buffer if train else 0, seed, failures, task
        self.row: dict[str, int] = {}
        self.rank, self.processes = process_rank()
        self.transform = ClipTransform(spec, train=train)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer (through accelerate) at each epoch's start."""
        self.epoch = epoch

    def _next_epoch(self) -> int:
        """The epoch an iteration reads; persistent workers never see set_epoch, so it is counted here too."""
        epoch, self.epoch = self.epoch, self.epoch + 1
        return epoch

    def _items(self, key: str, meta: dict[str, Any], video: InMemoryVideo, rng: random.Random
               ) -> Iterator[dict[str, Any]]:
        """The item(s) of one video (`meta`: its label or labels, split, group, frames, fps and duration): one
        random clip (train, its stride jittered up to `max_stride`) or every uniform clip."""
        label = "|".join(meta["labels"]) if "labels" in meta else meta["label"]
        record = VideoRecord(str(video), label, meta["split"], meta["group"], meta["frames"], meta["fps"],
                             meta["duration"], meta.get("start", 0.0))
        spec = self.spec.for_clip(rng.random) if self.train else self.spec
        if self.train:  # as ClipDataset's training windows: the frame counts come with the video (its header)
            length = spec.jittered_span(record.duration, record.fps, self.max_stride,
                                        rng.uniform)
            starts = [Fraction(rng.uniform(0, max(record.duration - float(length), 0)))]
        else:
            length = spec.clip_span(record.duration, record.fps)
            starts = uniform_clip_starts(record.duration, length)
        for clip, start in enumerate(starts):
            indices = record.clip_indices(spec, start, start + length)
            try:
                decoded = decode_clip(self.decode, video, indices, record.fps)
            except DecodeError as err:
                self._failed(record, err)
                return
            yield {"video": self.transform.frames(decoded), "label": self.task.target(record.label, self.label2id),
                   "video_index": self.row.get(key, -1), "clip_index": clip, "index": self.row.get(key, -1)}

    def _failed(self, record: VideoRecord, err: DecodeError) -> None:
        if self.failures is None:
            raise err
        self.failures.add(record, err, "its clips are left out of the stream")


def per_process_loader(dataset: ClipStream, args: Any, batch_size: int, collate: Any) -> Any:
    """The training DataLoader of a stream that splits itself by process: accelerate's own wrapper (set_epoch,
    batches moved to the device) without its sharding, which would split it a second time (or, by default
    for an IterableDataset, read it all in the main process and send the batches out)."""
    from accelerate.data_loader import prepare_data_loader

    workers = args.dataloader_num_workers
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, collate_fn=collate, num_workers=workers,
        pin_memory=args.dataloader_pin_memory, drop_last=args.dataloader_drop_last,
        persistent_workers=args.dataloader_persistent_workers if workers else False,
        prefetch_factor=args.dataloader_prefetch_factor if workers else None)
    return prepare_data_loader(loader, args.device, num_processes=1, process_index=0, put_on_device=True,
                               dispatch_batches=False)
