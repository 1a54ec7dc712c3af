"""The manifest in numpy arrays: a million videos cost the same in every DataLoader worker.

A list of a million VideoRecord objects is copied, page by page, into every forked DataLoader worker
that reads it: reading an object writes its reference count, and the write copies its page. Arrays of
numbers are read without writes, so workers share the parent's pages. `RecordTable` keeps each column
as one array (strings as one UTF-8 buffer and offsets, labels and splits as small codes) and makes a
VideoRecord only when one is asked for.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

import numpy as np

from .manifest import VideoRecord
from .user_videos import _largest_remainder

SPLIT_NAMES = ("train", "val", "test")


class Strings:
    """Strings as one UTF-8 buffer and offsets (no Python object per string)."""

    def __init__(self, values: Iterable[str]):
        encoded = [v.encode() for v in values]
        self.offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=self.offsets[1:])
        self.buffer = np.frombuffer(b"".join(encoded), np.uint8) if encoded else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].tobytes().decode()

    def take(self, indices: np.ndarray) -> "Strings":
        return Strings(self[int(i)] for i in indices)

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes + self.offsets.nbytes


class RecordTable(Sequence):
    """The manifest's rows (VideoRecord's fields) as columns; `table[i]` is a VideoRecord."""

    def __init__(self, paths: Strings, labels: np.ndarray, label_names: tuple[str, ...], splits: np.ndarray,
                 groups: Strings, frames: np.ndarray, fps: np.ndarray, duration: np.ndarray,
                 split_names: tuple[str, ...] = SPLIT_NAMES, start: np.ndarray | None = None):
        self.paths, self.labels, self.label_names, self.splits, self.groups = paths, labels, label_names, splits, groups
        self.split_names = split_names  # train, val, test, then any other (a video inference was given: "")
        self.frames, self.fps, self.duration = frames, fps, duration
        self.start = np.zeros(len(frames), np.float64) if start is None else start  # segments: s into the file

    @classmethod
    def of(cls, records: Union["RecordTable", Iterable[VideoRecord]]) -> "RecordTable":
        """A table of `records` (a table is returned as it is)."""
        if isinstance(records, RecordTable):
            return records
        columns = list(zip(*((r.path, r.label, r.split, r.group, r.frames, r.fps, r.duration, r.start)
                             for r in records)))
        return cls.from_columns(*(columns or ((),) * 8))  # no records: eight empty columns

    @classmethod
    def from_columns(cls, paths: Sequence[str], labels: Sequence[str], splits: Sequence[str], groups: Sequence[str],
                     frames: Sequence[int], fps: Sequence[float], duration: Sequence[float],
                    start: Sequence[float] | None = None) -> "RecordTable":
        label_names, label_codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True) \
            if len(labels) else (np.zeros(0, str), np.zeros(0, np.int64))
        split_names = SPLIT_NAMES + tuple(sorted(set(splits) - set(SPLIT_NAMES)))
        split_index = {s: i for i, s in enumerate(split_names)}
        return cls(Strings(paths), label_codes.astype(np.int32), tuple(str(n) for n in label_names),
                   np.fromiter((split_index[s] for s in splits), np.int16, len(splits)), Strings(groups),
                   np.asarray(frames, np.int64), np.asarray(fps, np.float64), np.asarray(duration, np.float64),
                   split_names, None if start is None else np.asarray(start, np.float64))

    @classmethod
    def read_csv(cls, text: str) -> "RecordTable":
        """manifest.csv's text -> a table; the rows pass through columns, never as objects that stay."""
        reader = csv.reader(io.StringIO(text))
        header = next(reader)
        columns: list[list[str]] = [[] for _ in header]
        for row in reader:
            for column, value in zip(columns, row):
                column.append(value)
        named = dict(zip(header, columns))
        return cls.from_columns(named["path"], named["label"], named["split"], named["group"],
                                np.asarray(named["frames"], np.int64), np.asarray(named["fps"], np.float64),
                                np.asarray(named["duration"], np.float64),
                                np.asarray(named["start"], np.float64) if "start" in named else None)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        i = int(i)
        return VideoRecord(self.paths[i], self.label_names[self.labels[i]], self.split_names[self.splits[i]],
                           self.groups[i], int(self.frames[i]), float(self.fps[i]), float(self.duration[i]),
                           float(self.start[i]))

    def __iter__(self) -> Iterator[VideoRecord]:
        return (self[i] for i in range(len(self)))

    def take(self, indices: np.ndarray) -> "RecordTable":
        indices = np.asarray(indices, np.int64)
        return RecordTable(self.paths.take(indices), self.labels[indices], self.label_names, self.splits[indices],
                           self.groups.take(indices), self.frames[indices], self.fps[indices], self.duration[indices],
                           self.split_names, self.start[indices])

    def split(self, name: str) -> "RecordTable":
        return self.take(np.flatnonzero(self.splits == self.split_names.index(name)))

    @property
    def nbytes(self) -> int:
        return (self.paths.nbytes + self.groups.nbytes + self.labels.nbytes + self.splits.nbytes
                + self.frames.nbytes + self.fps.nbytes + self.duration.nbytes + self.start.nbytes)


def split_by_group(labels: Sequence[str], groups: Sequence[str], fractions: tuple[float, float, float],
                   seed: int, multi_label: bool = False) -> np.ndarray:
    """Each video's split (codes into SPLIT_NAMES), whole groups at a time per class, exactly as
    user_videos.assign_splits chooses them, over arrays: the videos' Python objects are never made."""
    label_names, label_codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    group_names, group_codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    if multi_label:  # all videos as one class, so a group never straddles splits
        label_names, label_codes = np.array(["all videos"]), np.zeros(len(label_codes), np.int64)
    out = np.full(len(label_codes), -1, np.int8)
    # (class, group) pairs: each pair's videos go together
    pairs, pair_of = np.unique(label_codes * len(group_names) + group_codes, return_inverse=True)
    pair_split = np.full(len(pairs), -1, np.int8)
    pair_class, pair_group = pairs // len(group_names), pairs % len(group_names)
    for c in np.argsort(label_names):  # sorted class names, as assign_splits goes
        mine = np.flatnonzero(pair_class == c)
        names = [str(group_names[g]) for g in pair_group[mine]]
        order = sorted(range(len(mine)), key=names.__getitem__)
        shuffled = [mine[i] for i in order]
        random.Random(f"{seed}/{label_names[c]}").shuffle(shuffled)
        start = 0
        for split, count in enumerate(_largest_remainder(len(shuffled), fractions)):
            pair_split[shuffled[start:start + count]] = split
            start += count
    out[:] = pair_split[pair_of]
    return out
