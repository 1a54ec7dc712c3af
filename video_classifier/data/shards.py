"""A prepared dataset as WebDataset-style tar shards, and the streaming dataset that trains on them.

`prepare_data.py --shards DIR` writes a prepared folder as `DIR/<split>-NNNNN.tar`: per video a member
`<key>.<ext>` (its bytes, unchanged) and `<key>.json` (label or labels, group, frames, fps, duration,
split, and the path it was prepared from), members of one video next to each other, as WebDataset
reads them. A shard closes before it would pass `--shard-mb` megabytes (a video bigger than that
gets a shard to itself). Beside the shards: `index.json` (the videos per split and per shard),
`labels.json`, and `manifest.csv`, whose paths name each video's byte range in its shard
(`<shard>:<offset>:<size>:<member>`, storage.py). The folder can be copied anywhere fsspec reads
(`data.root`: a folder, `file://`, `http(s)://`, `hf://`, `s3://`).

With `data.source: shards`:

- training streams (`ShardClipDataset`, a torch IterableDataset): each epoch the shards, in an order
  drawn from (seed, epoch) that every process draws alike, are dealt out to the processes
  (shard i of that order to process i mod processes), then to each process's DataLoader workers (when
  a process has fewer shards than workers, its workers read all of them and keep every k-th video);
  each video read is decoded from memory, one random clip of it, through a shuffle buffer of
  `data.shuffle_buffer` videos. The Trainer stops after max_steps, which train.py computes from the
  index's video count as for a folder; a process whose shards hold more videos than another's simply
  reaches the next epoch later (exact when the shards split evenly, as from one writer with equal-size
  videos). Resume: the Trainer replays the stream and skips the batches already trained, so the same
  videos come in the same order, but their random clips and crops are drawn anew (not sample-exact).
- evaluation (per epoch and the final multi-view scoring) is map-style, the same ClipDataset and
  ViewDataset as a folder's: each video is one ranged read of its shard, so its clips and views are
  exactly a folder's.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import re
import shutil
import tarfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from ..core.errors import UserError, first_line
from ..core.task import SingleLabel, Task, split_labels
from .clips import DecodeFailures
from .decoding import Decoder, probe_header
from .manifest import LABELS, VideoRecord, load_prepared, prepared_task, write_manifest
from .preprocessing import PreprocessSpec
from .storage import SHARD_MEMBER, InMemoryVideo, join, open_stream, read_bytes, video_source
from .streaming import ClipStream
from .user_videos import SPLITS, file_name

INDEX = "index.json"
FORMAT = "video-classifier shards 1"


def _key(index: int, path: str) -> str:
    """A member's key: WebDataset takes everything before the first dot as the key, so none in it."""
    return f"{index:07d}_" + re.sub(r"[^A-Za-z0-9_-]", "_", Path(path).stem)[:80]


def write_shards(root: str | Path, out: str | Path, max_mb: float) -> Path:
    """Write the prepared folder `root` as shards of at most `max_mb` MB into `out` (built in a hidden
    `.<out>.partial` folder, renamed into place when complete); returns `out`."""
    root, out = Path(root), Path(out)
    label2id, records = load_prepared(root)
    if any(r.start for r in records):
        raise UserError(f"{root} holds segments of recordings: a shard would hold each recording's bytes once per "
                        "segment; train on the prepared folder, which reads the segments in place by seeking")
    multi_label = prepared_task(root) != SingleLabel.name
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--shards {out} exists and is not empty: give a new folder")
    partial = out.parent / f".{out.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run of ours
    partial.mkdir(parents=True)
    limit = int(max_mb * 1e6)
    rows, index = [], {"format": FORMAT, "task": prepared_task(root), "max_mb": max_mb, "splits": {}}
    for split in SPLITS:
        shards: dict[str, int] = {}
        batch: list[tuple[VideoRecord, Path | bytes]] = []
        size = 0
        split_records = [r for r in records if r.split == split]
        for record in tqdm(split_records, desc=f"writing {split} shards", unit="video"):
            video = _video_of(root, record)  # a local file's path, or the bytes of any other source
            video_bytes = video.stat().st_size if isinstance(video, Path) else len(video)
            if record.fps <= 0:  # a streamed training video (data.hf_dataset.streaming), not read until now
                header = probe_header(video if isinstance(video, Path) else InMemoryVideo(record.path, video))
                record = dataclasses.replace(record, frames=header[0], fps=header[1], duration=header[2])
            if batch and size + video_bytes > limit:
                rows += _write_shard(partial, f"{split}-{len(shards):05d}.tar", batch, multi_label, shards)
                batch, size = [], 0
            batch.append((record, video))
            size += video_bytes + 2048  # two headers and padding
        if batch:
            rows += _write_shard(partial, f"{split}-{len(shards):05d}.tar", batch, multi_label, shards)
        index["splits"][split] = {"videos": len(split_records), "shards": shards}
    write_manifest(rows, partial)
    (partial / LABELS).write_bytes((root / LABELS).read_bytes())
    (partial / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    if out.exists():
        out.rmdir()
    partial.rename(out)
    counts = {s: (v["videos"], len(v["shards"])) for s, v in index["splits"].items()}
    print(f"wrote {out}: {len(label2id)} classes, "
          + ", ".join(f"{n} {s} videos in {k} shards" for s, (n, k) in counts.items()))
    return out


def _video_of(root: Path, record: VideoRecord) -> Path | bytes:
    """A prepared video as a shard takes it: a local file's path, or the bytes of a URL, an Arrow row or a
    shard member; one that cannot be read is a one-line error naming it."""
    source = video_source(root, record.path)
    if isinstance(source, Path):
        return source
    try:
        with source.open() as f:
            return f.read()
    except OSError as err:
        raise UserError(f"cannot read {source} to write it into a shard ({first_line(err)}): check that it is "
                        "still there, or prepare the data again") from None


def _write_shard(folder: Path, name: str, batch: list[tuple[VideoRecord, Path | bytes]], multi_label: bool,
                 shards: dict[str, int]) -> list[VideoRecord]:
    """One tar of `batch`; its manifest rows, each path naming the video's byte range in it."""
    keys = []
    with tarfile.open(folder / name, "w", format=tarfile.USTAR_FORMAT) as tar:
        for record, path in batch:
            file = file_name(record.path)
            key = _key(len(keys) + sum(shards.values()), file)
            meta = {"labels" if multi_label else "label": split_labels(record.label) if multi_label else record.label,
                    "group": record.group, "frames": record.frames, "fps": record.fps, "duration": record.duration,
                    "split": record.split, "source": record.path}
            _add(tar, f"{key}.json", json.dumps(meta).encode())
            video = f"{key}{PurePosixPath(file).suffix.lower()}"
            if isinstance(path, Path):
                tar.add(path, arcname=video, recursive=False)
            else:
                _add(tar, video, path)
            keys.append((record, video))
    with tarfile.open(folder / name) as tar:  # where each video's bytes landed
        where = {m.name: (m.offset_data, m.size) for m in tar.getmembers()}
    shards[name] = len(batch)
    return [VideoRecord(f"{name}:{where[video][0]}:{where[video][1]}:{video}", r.label, r.split, r.group, r.frames,
                        r.fps, r.duration) for r, video in keys]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def read_index(root: str | Path) -> dict[str, Any]:
    """index.json of shards at `root`; one that is not ours is a one-line error naming it."""
    try:
        index = json.loads(read_bytes(root, INDEX))
    except json.JSONDecodeError as err:
        raise UserError(f"{join(root, INDEX)} is not JSON ({err}): write the shards again with prepare_data.py "
                        "--shards") from None
    if index.get("format") != FORMAT:
        raise UserError(f"{join(root, INDEX)} is not an index of shards written by prepare_data.py --shards")
    return index


def describe_shards(root: str | Path) -> str:
    """One line on the shards at `root`, after checking that the index and the first shard of each split read."""
    index = read_index(root)
    for entry in index["splits"].values():
        if entry["shards"]:
            check_tar(str(join(root, next(iter(entry["shards"])))))
    return f"shards at {root}: " + ", ".join(f"{v['videos']} {s} videos in {len(v['shards'])} shards"
                                             for s, v in index["splits"].items())


def check_tar(url: str) -> None:
    """A shard's first header must be a tar header: one line naming the file otherwise."""
    with open_stream(url) as f:
        head = f.read(tarfile.BLOCKSIZE)
    try:
        tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError as err:
        raise UserError(f"shard {url} is not a tar file ({err}): write the shards again with prepare_data.py "
                        "--shards, or check data.root") from None


def iter_shard(url: str) -> Iterator[tuple[str, dict[str, Any], InMemoryVideo]]:
    """(key, metadata, video) of each video in a shard, streamed in one pass."""
    with open_stream(url) as f:
        try:
            with tarfile.open(fileobj=f, mode="r|") as tar:
                key, meta, video = None, None, None
                for member in tar:
                    name, _, ext = member.name.partition(".")
                    if name != key:
                        if meta is not None and video is not None:
                            yield key, meta, video
                        key, meta, video = name, None, None
                    data = tar.extractfile(member).read()
                    if ext == "json":
                        meta = json.loads(data)
                    else:
                        video = InMemoryVideo(f"{url}:{member.name}", data)
                if meta is not None and video is not None:
                    yield key, meta, video
        except tarfile.TarError as err:
            raise UserError(f"shard {url} is not a tar file or is cut short ({err}): write the shards again "
                            "with prepare_data.py --shards") from None


def shards_of(records: list[VideoRecord]) -> dict[str, int]:
    """The shards holding `records` (in order of first appearance) and their videos."""
    return dict(Counter(SHARD_MEMBER.match(r.path)["shard"] for r in records))


class ShardClipDataset(ClipStream):
    """Clips streamed from shards, split by process and DataLoader worker (the module's docstring), through a
    shuffle buffer of `shuffle_buffer` videos' bytes when training."""

    def __init__(self, root: str | Path, records: list[VideoRecord], label2id: dict[str, int], spec: PreprocessSpec,
                 train: bool, decoder: Decoder, shuffle_buffer: int = 64, seed: int | None = None,
                 failures: DecodeFailures | None = None, task: Task = SingleLabel(), max_stride: float | None = None):
        super().__init__(label2id, spec, train, decoder, shuffle_buffer, seed, failures, task, max_stride)
        self.root = root
        self.shards = shards_of(records)
        self.row = {SHARD_MEMBER.match(r.path)["name"].partition(".")[0]: i for i, r in enumerate(records)}
        self.videos = len(records)
        if len(self.shards) < self.processes:
            raise UserError(f"{len(self.shards)} shards under {root} for {self.processes} processes: each process "
                            "needs one at least; write smaller shards (prepare_data.py --shard-mb)")

    def assigned(self, epoch: int, worker: int, workers: int) -> tuple[list[str], int, int]:
        """(shards this worker of this process reads in `epoch`, k, r): it keeps the videos whose position
        in its reading is r mod k (k = 1 when it has shards of its own)."""
        order = sorted(self.shards)
        if self.train:
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)  # the same order in every process
        mine = order[self.rank::self.processes]
        if len(mine) >= workers:
            return mine[worker::workers], 1, 0
        return mine, workers, worker

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        epoch = self._next_epoch()
        shards, every, keep = self.assigned(epoch, worker, workers)
        rng = random.Random(hash((self.seed, epoch, self.rank, worker)))
        buffer: list[tuple[str, dict[str, Any], InMemoryVideo]] = []
        position = 0
        for shard in shards:
            for sample in iter_shard(str(join(self.root, shard))):
                if sample[0] not in self.row:  # a video of the shard that `records` leave out
                    continue
                position += 1
                if (position - 1) % every != keep:
                    continue
                if not self.shuffle_buffer:
                    yield from self._items(*sample, rng)
                    continue
                buffer.append(sample)
                if len(buffer) >= self.shuffle_buffer:
                    yield from self._items(*buffer.pop(rng.randrange(len(buffer))), rng)
        rng.shuffle(buffer)
        for sample in buffer:
            yield from self._items(*sample, rng)


