"""One clip decoded, and the log of the videos that would not decode: below every dataset (map-style or
streamed) and the timeline."""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import av
import torch

from ..core.errors import DecodeError, first_line
from .decoding import Decoder
from .manifest import VideoRecord
from .storage import InMemoryVideo, ShardMember, video_source


def decode_clip(decode: Decoder, path: Path, indices: list[int], fps: float) -> torch.Tensor:
    """`decode(path, indices, fps)`, with the decoders' own failures (PyAV's FFmpegError, torchcodec's
    RuntimeError or ValueError, a file gone: OSError) turned into a DecodeError that names the file.
    Only the decoder call is inside: nothing else is ever taken for a video that does not decode."""
    try:
        return decode(path, indices, fps)
    except DecodeError:
        raise
    except (av.FFmpegError, RuntimeError, ValueError, OSError) as err:
        raise DecodeError(f"could not decode frames {indices[0]}-{indices[-1]} of {path}: {first_line(err)}") from err


def in_memory(member: ShardMember) -> InMemoryVideo:
    """A shard member's bytes, read once; a read that fails (a shard gone or changed) is a DecodeError."""
    try:
        with member.open() as f:
            return InMemoryVideo(str(member), f.read())
    except OSError as err:
        raise DecodeError(f"could not read {member}: {first_line(err)}") from err


def readable(root: str | Path, path: str) -> Any:
    """What the decoders read for a manifest `path` under `root` (storage.video_source), a shard member's
    byte range read once, for all the frames taken from it."""
    source = video_source(root, path)
    return in_memory(source) if isinstance(source, ShardMember) else source


class DecodeFailures:
    """Videos that would not decode during a run, appended to a CSV file (split, video, reason) that the
    DataLoader workers share, and said once per process on stderr. A video that failed twice in a
    process is not tried again there."""

    FIELDS = ("split", "video", "reason")

    def __init__(self, path: Path):
        self.path = path
        self.counts: Counter[str] = Counter()  # this process's failures per video

    def add(self, record: VideoRecord, err: Exception, what: str) -> None:
        reason = first_line(err)
        self.counts[record.path] += 1
        if self.counts[record.path] == 1:
            print(f"warning: cannot decode {record.path} ({reason}): {what}", file=sys.stderr, flush=True)
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as f:  # one short line per write: appends do not interleave
            writer = csv.writer(f)
            if new:
                writer.writerow(self.FIELDS)
            writer.writerow((record.split, record.path, reason))

    def dropped(self, record: VideoRecord) -> bool:
        return self.counts[record.path] >= 2

    @classmethod
    def summary(cls, path: Path) -> dict[str, dict[str, Any]]:
        """split -> {"failures": decoding failures, "videos": the videos that failed}, from the file."""
        if not path.is_file():
            return {}
        out: dict[str, dict[str, Any]] = {}
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                entry = out.setdefault(row["split"], {"failures": 0, "videos": []})
                entry["failures"] += 1
                if row["video"] not in entry["videos"]:
                    entry["videos"].append(row["video"])
        return out
