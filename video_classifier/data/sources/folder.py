"""data.source folder: your videos where they are (`data.videos`: a folder <Class>/**/<video>, or a .csv/.jsonl
list of paths or URLs), checked, split by group and listed in the prepared folder's manifest; never copied."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ...core.config import DataConfig
from ...core.errors import UserError
from .. import user_videos
from ..manifest import VideoRecord
from .base import Source


def user_video_records(config: DataConfig, out: Path, full: bool, listed: list[user_videos.Listed], where: str,
                       unprobed: tuple[str, ...] = ()) -> tuple[list[VideoRecord], bool]:
    """The user's videos `listed` (found in `where`) as records with absolute paths, checked and split, and
    whether the list is multi-label; rejected.csv and the split report (splits.csv) written into `out`. The
    videos of the splits `unprobed` are not read: 0 frames, fps and seconds."""
    checked = user_videos.check_videos([v.path for v in listed if v.split not in unprobed], full)
    checked.update({v.path: ((0, 0.0, 0.0), "") for v in listed if v.split in unprobed})
    rejected = [(v, checked[v.path][1]) for v in listed if checked[v.path][0] is None]
    if rejected and config.on_bad_video == "error":
        video, reason = rejected[0]
        raise UserError(f"{len(rejected)} of {len(listed)} videos do not decode, first {video.path}: {reason} "
                        "(data.on_bad_video: skip leaves them out and lists them)")
    with open(out / user_videos.REJECTED, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "reason"])
        writer.writerows((str(v.path), v.label, reason) for v, reason in rejected)
    good = [v for v in listed if checked[v.path][0] is not None]
    if not good:
        raise UserError(f"none of the {len(listed)} videos in {where} decodes (reasons in "
                        f"{out / user_videos.REJECTED}): check the files")
    if good[0].split:  # splits given by the list: kept
        split_of, short = {v.path: v.split for v in good}, []
    else:
        split_of, short = user_videos.assign_splits(good, tuple(config.split_fractions), config.group_pattern,
                                                    config.split_seed)
    records = [VideoRecord(str(v.path), v.label, split_of[v.path], user_videos.group_of(v, config.group_pattern),
                           *checked[v.path][0]) for v in good]
    report = user_videos.write_split_report([(r.label, r.split) for r in records], out)
    print(f"{len(listed)} videos found in {where}; {len(rejected)} rejected"
          + (f" (listed with the reason in {Path(config.root) / user_videos.REJECTED})" if rejected else "")
          + "; videos per class and split (splits.csv):\n" + report)
    for message in short:
        print(f"note: {message} (add videos, or set data.split_fractions)")
    return records, listed[0].multi_label


class Folder(Source):
    name = "folder"
    refuses = "a stream: the videos are read in place, map-style, by file or URL"

    def check(self, data: DataConfig) -> None:
        if not data.videos:
            raise UserError("data.videos is empty: source 'folder' needs a folder <Class>/<video> or a "
                            ".csv/.jsonl list")
        super().check(data)

    def record(self, data: DataConfig) -> dict[str, Any]:
        return {"videos": str(Path(data.videos).expanduser().resolve()), "split_fractions": data.split_fractions,
                "group_pattern": data.group_pattern, "split_seed": data.split_seed}

    def prepare(self, data: DataConfig, out: Path, full: bool) -> tuple[list[VideoRecord], bool]:
        return user_video_records(data, out, full, user_videos.list_videos(data), data.videos)
