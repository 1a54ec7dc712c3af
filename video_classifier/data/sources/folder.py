"""data.source folder: your videos where they are (`data.videos`: a folder <Class>/**/<video>, or a .csv/.jsonl
list of paths or URLs), checked, split by group and listed in the prepared folder's manifest; never copied."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...core.config import DataConfig
from ...core.errors import UserError
from .. import segments, user_videos
from ..audit_lists import duplicate_clusters
from ..manifest import VideoRecord, segment_frames
from .base import Source


def user_video_records(config: DataConfig, out: Path, full: bool, listed: list[user_videos.Listed], where: str,
                       unprobed: tuple[str, ...] = ()) -> tuple[list[VideoRecord], bool]:
    """The user's videos `listed` (found in `where`) as records with absolute paths, checked and split, and
    whether the list is multi-label; rejected.csv and the split report (splits.csv) written into `out`. The
    videos of the splits `unprobed` are not read: 0 frames, fps and seconds. Segments of a recording (rows
    with start/end) are checked against it and joined by background (data.background); each file is read
    once, however many rows name it."""
    files = list(dict.fromkeys(v.path for v in listed if v.split not in unprobed))
    checked = user_videos.check_videos(files, full)
    checked.update({v.path: ((0, 0.0, 0.0), "") for v in listed if v.split in unprobed})
    rejected = [path for path in dict.fromkeys(v.path for v in listed) if checked[path][0] is None]
    if rejected and config.on_bad_video == "error":
        raise UserError(f"{len(rejected)} of {len(checked)} videos do not decode, first {rejected[0]}: "
                        f"{checked[rejected[0]][1]} (data.on_bad_video: skip leaves them out and lists them)")
    _write_rejected(out, listed, rejected, checked)
    good = [v for v in listed if checked[v.path][0] is not None]
    if not good:
        raise UserError(f"none of the {len(checked)} videos in {where} decodes (reasons in "
                        f"{out / user_videos.REJECTED}): check the files")
    multi_label = listed[0].multi_label
    segmented = any(v.is_segment for v in good)
    background = 0
    if segmented:
        good, background = segment_rows(config, good, checked, multi_label)
    split_of, short = _splits(config, good)
    records = [_record(v, split_of[v.path], user_videos.group_of(v, config.group_pattern), checked[v.path][0])
               for v in good]
    recordings = Counter(split_of[path] for path in dict.fromkeys(v.path for v in good)) if segmented else None
    report = user_videos.write_split_report([(r.label, r.split) for r in records], out, recordings)
    what = (f"{len(checked)} recordings, {sum(v.is_segment for v in good)} segments"
            + (f" ({background} of them background)" if config.background else "")) if segmented \
        else f"{len(listed)} videos"
    print(f"{what} found in {where}; {len(rejected)} rejected"
          + (f" (listed with the reason in {Path(config.root) / user_videos.REJECTED})" if rejected else "")
          + "; videos per class and split (splits.csv):\n" + report)
    for message in short:
        print(f"note: {message} (add videos, or set data.split_fractions)")
    return records, multi_label


def _write_rejected(out: Path, listed: list[user_videos.Listed], rejected: list[Any],
                    checked: dict[Any, tuple[Any, str]]) -> None:
    """rejected.csv: one row per file that does not decode, with every label its rows give it."""
    labels: dict[Any, list[str]] = {}
    for v in listed:
        labels.setdefault(v.path, [])
        if v.label not in labels[v.path]:
            labels[v.path].append(v.label)
    with open(out / user_videos.REJECTED, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "reason"])
        writer.writerows((str(path), " ".join(labels[path]), checked[path][1]) for path in rejected)


def _background(config: DataConfig, multi_label: bool) -> str:
    """The background segments' label: data.background's class, or no labels on a multi-label set."""
    return "" if multi_label else str(config.background or "")


def segment_rows(config: DataConfig, rows: list[user_videos.Listed], checked: dict[Any, tuple[Any, str]],
                 multi_label: bool) -> tuple[list[user_videos.Listed], int]:
    """Each recording's segments in seconds, checked against its length (segments.py's rules), then its
    background segments where data.background is set (and how many). Whole-file rows pass as they are."""
    by_file: dict[Any, list[user_videos.Listed]] = {}
    for row in rows:
        if row.is_segment:
            by_file.setdefault(row.path, []).append(row)
    out, clamped, drawn = [r for r in rows if not r.is_segment], 0, 0
    for path, mine in by_file.items():
        _, fps, duration = checked[path][0]
        rate = config.annotation_fps or fps
        spans = [segments.Span(*((r.start - 1) / rate, r.end / rate) if r.in_frames else (r.start, r.end),
                               r.label, r.where) for r in mine]
        spans, count = segments.bounded(spans, duration, str(path))
        clamped += count
        if not multi_label:
            segments.check_overlaps(spans)
        out += [replace(r, start=s.start, end=s.end, in_frames=False) for r, s in zip(mine, spans)]
        if config.background:
            margin = config.background_margin
            shortest = config.background_min or BACKGROUND_CLIP_FRAMES * config.sample_rate / fps + margin
            label = _background(config, multi_label)
            found = segments.background(spans, duration, label, shortest, margin, str(path))
            out += [replace(mine[0], label=label, start=b.start, end=b.end, where=b.where) for b in found]
            drawn += len(found)
    if clamped:
        print(f"note: {clamped} segment ends were past their recording's end by at most {segments.CLAMP} s: "
              "clamped to it")
    if any(r.in_frames for r in rows):
        print("Label Studio frames read at " + (f"data.annotation_fps {config.annotation_fps:g}"
                                                if config.annotation_fps else "each video's own frame rate "
                                                "(set data.annotation_fps to the <Video frameRate> used)"))
    return out, drawn


# a background segment is at least one clip long by default: VideoMAE's 16 frames at data.sample_rate
BACKGROUND_CLIP_FRAMES = 16


def _splits(config: DataConfig, rows: list[user_videos.Listed]) -> tuple[dict[Any, str], list[str]]:
    """Each file's split: the list's (one per recording: refused where its rows give two), else by group."""
    if not rows[0].split:
        if not config.duplicate_groups:
            return user_videos.assign_splits(rows, tuple(config.split_fractions), config.group_pattern,
                                             config.split_seed)
        rows = grouped_by_duplicates(rows, config)
        split_of, short = user_videos.assign_splits(rows, tuple(config.split_fractions), config.group_pattern,
                                                    config.split_seed)
        return one_split_per_cluster(rows, split_of), short
    split_of: dict[Any, str] = {}
    for row in rows:
        if split_of.setdefault(row.path, row.split) != row.split:
            raise UserError(f"{row.where}: split {row.split} for {row.path}, whose other rows say "
                            f"{split_of[row.path]}: one recording goes to one split")
    return split_of, []


DUPLICATES = "duplicates "  # the group name of a duplicate cluster's videos: "duplicates cluster 3"


def grouped_by_duplicates(rows: list[user_videos.Listed], config: DataConfig) -> list[user_videos.Listed]:
    """The rows with each duplicate cluster of data.duplicate_groups (an audit's issues.csv) and every group
    one of its videos is in made one group, so that the split keeps a cluster together."""
    cluster_of = duplicate_clusters(config.duplicate_groups)
    merged: dict[str, str] = {}
    for cluster in dict.fromkeys(cluster_of.values()):
        groups = {user_videos.group_of(r, config.group_pattern) for r in rows if cluster_of.get(str(r.path)) == cluster}
        name = next((merged[g] for g in groups if g in merged), f"{DUPLICATES}{cluster}")
        merged.update((g, name) for g in groups)
    moved = [replace(r, group=merged.get(user_videos.group_of(r, config.group_pattern), r.group)) for r in rows]
    print(f"data.duplicate_groups: {len(set(cluster_of.values()))} duplicate clusters kept within one split each")
    return moved


def one_split_per_cluster(rows: list[user_videos.Listed], split_of: dict[Any, str]) -> dict[Any, str]:
    """Splits are drawn per class, so a cluster whose copies carry different labels (a copy filed under
    another class) could still straddle them: each such cluster goes whole to the first split (train before
    val before test) any of its videos drew, so that no evaluation split holds a copy of a training video."""
    drawn: dict[str, list[str]] = {}
    for row in rows:
        if row.group.startswith(DUPLICATES):
            drawn.setdefault(row.group, []).append(split_of[row.path])
    first = {group: min(splits, key=user_videos.SPLITS.index) for group, splits in drawn.items()}
    return {row.path: first.get(row.group, split_of[row.path]) for row in rows}


def _record(row: user_videos.Listed, split: str, group: str, probe: tuple[int, float, float]) -> VideoRecord:
    frames, fps, duration = probe
    if not row.is_segment:
        return VideoRecord(str(row.path), row.label, split, group, frames, fps, duration)
    return VideoRecord(str(row.path), row.label, split, group, segment_frames(row.start, row.end, fps, frames), fps,
                       round(row.end - row.start, 6), row.start)


# what decides a prepared folder of annotated recordings besides the list (recorded only where set, so that a
# folder prepared before they existed is still the same folder)
ANNOTATION_SETTINGS = ("video_dir", "annotation_fps", "elan_tier", "background", "background_min")


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
                "group_pattern": data.group_pattern, "split_seed": data.split_seed,
                **{k: getattr(data, k) for k in ANNOTATION_SETTINGS if getattr(data, k) is not None},
                **({"background_margin": data.background_margin} if data.background else {})}

    def prepare(self, data: DataConfig, out: Path, full: bool) -> tuple[list[VideoRecord], bool]:
        return user_video_records(data, out, full, user_videos.list_videos(data), data.videos)
