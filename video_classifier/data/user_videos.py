"""The user's own videos (`data.source: folder`): found in place, checked, split, never copied or changed.

`data.videos` is a folder `<Class>/**/<video>` or a list (.csv with a header, or
.jsonl) of `path`, `label` and optionally `split` and `group`; relative paths in
a list are relative to the list's folder. A list with a `labels` column instead
(.csv: labels separated by `|`; .jsonl: a list of strings) is multi-label: a
video may have several labels, or none. Every video is opened and decoded
(a frame at its start, middle and end; all of them with `--check full`) on all
cores; one that fails is left out and listed in `rejected.csv` with the reason.
Splits given in a list are kept; otherwise whole groups go to train/val/test in
`data.split_fractions`, per class, in a random order fixed by `data.split_seed`,
so that clips cut from one source never straddle splits. A video's group comes
from the list, else from `data.group_pattern` on its file name (UCF101's
`_gNN_` by default), else it is its own group. A list may name http(s) URLs: such a video is checked
and, later, decoded by byte ranges (sources.RemoteVideo), never downloaded whole.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import av
from tqdm.auto import tqdm

from ..core.config import DataConfig
from ..core.errors import UserError, first_line
from ..core.task import LABEL_SEPARATOR, join_labels, split_labels
from . import annotations
from .decoding import opened, stream_header
from .storage import ARROW_ROW, is_url, video_source

SPLITS = ("train", "val", "test")
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
REJECTED = "rejected.csv"
SPLIT_REPORT = "splits.csv"


@dataclass
class Listed:
    """One video as the user gave it."""

    path: Path | str  # absolute, or a URL (str)
    label: str  # multi-label: the labels joined by LABEL_SEPARATOR ("" for none)
    split: str = ""
    group: str = ""
    multi_label: bool = False  # the list has a `labels` column
    # a segment of a recording: its range in seconds (Label Studio's: 1-based frames, the last included, until
    # the video's rate is known: in_frames); None for a whole file
    start: float | None = None
    end: float | None = None
    where: str = ""  # the row that gave it, for messages
    in_frames: bool = False

    @property
    def is_segment(self) -> bool:
        return self.start is not None


def list_videos(config: DataConfig) -> list[Listed]:
    """The user's videos with their labels (and splits, groups and time ranges, where given): a folder of
    class folders, a list, or an annotation tool's export (annotations.py)."""
    source = Path(config.videos).expanduser()
    if not source.exists():
        raise UserError(f"data.videos {source} not found: give a folder <Class>/<video>, a .csv/.jsonl list, "
                        "a Label Studio export (.json), ELAN .eaf files or a Kinetics list")
    annotated = _annotated(source, config)
    if annotated is not None:
        return annotated
    return _listed_videos(source)


def _annotated(source: Path, config: DataConfig) -> list[Listed] | None:
    """The videos of an annotation tool's export at `source`, or None where `source` is not one."""
    if source.suffix.lower() == ".eaf" or (source.is_dir() and any(source.glob("*.eaf"))):
        rows = annotations.elan(source, config.elan_tier)
    elif source.suffix.lower() == ".json" and annotations.looks_like_label_studio(source):
        rows = [_video_in(row, config, source) for row in annotations.label_studio(source)]
    elif source.suffix.lower() == ".csv" and annotations.is_kinetics(_csv_header(source)):
        folder = Path(config.video_dir or source.parent).expanduser()
        rows, missing = annotations.kinetics(source, folder)
        if missing:
            print(f"note: {len(missing)} videos of {source} are not in {folder} (first {', '.join(missing[:5])}): "
                  "left out")
        if not rows:
            raise UserError(f"none of the videos {source} lists is in {folder}: set data.video_dir to the folder "
                            "of the downloads (<youtube_id>.mp4)")
    else:
        return None
    return [Listed(Path(r.path), r.label, r.split, r.group, False, r.start, r.end, r.where, r.in_frames)
            for r in rows]


def _video_in(row: annotations.Annotated, config: DataConfig, export: Path) -> annotations.Annotated:
    """A Label Studio task's video found under data.video_dir (else the export's folder): its path as given,
    its file name, or its file name without the prefix Label Studio adds to uploads (`1a2b3c4d-`)."""
    folder = Path(config.video_dir or export.parent).expanduser()
    name = PurePosixPath(row.path).name
    candidates = [folder / row.path.lstrip("/"), folder / PurePosixPath(*PurePosixPath(row.path).parts[-2:]),
                  folder / name, folder / name.split("-", 1)[-1]]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise UserError(f"{row.where}: video {row.path} not found in {folder}: set data.video_dir to the folder "
                        "holding the project's videos")
    row.path = str(found.resolve())
    return row


def _csv_header(source: Path) -> list[str]:
    with open(source, newline="") as f:
        return next(csv.reader(f), [])


def _listed_videos(source: Path) -> list[Listed]:


    if source.is_dir():
        listed = [Listed(p.resolve(), p.relative_to(source).parts[0])
                  for p in sorted(source.rglob("*"))
                  if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and len(p.relative_to(source).parts) > 1]
        if not listed:
            raise UserError(f"data.videos {source} holds no videos in class folders (<Class>/**/<video>, "
                            f"{', '.join(sorted(VIDEO_SUFFIXES))})")
        return listed
    rows = _read_list(source)
    multi = bool(rows) and "labels" in rows[0]
    listed = []
    for number, row in enumerate(rows, start=2 if source.suffix.lower() == ".csv" else 1):
        path = str(row.get("path") or "").strip()
        label = _row_labels(row.get("labels"), source, number) if multi else str(row.get("label") or "").strip()
        if not path or (not label and not multi):
            raise UserError(f"{source} line {number}: every row needs a path and a label")
        split = str(row.get("split") or "").strip()
        if split and split not in SPLITS:
            raise UserError(f"{source} line {number}: split {split!r} is not one of {', '.join(SPLITS)}")
        where = path if is_url(path) else (source.parent / Path(path).expanduser()).resolve()
        start, end = _row_range(row, source, number)
        listed.append(Listed(where, label, split, str(row.get("group") or "").strip(), multi, start, end,
                             f"{source} line {number}"))
    if not listed:
        raise UserError(f"{source} lists no videos")
    given = {bool(v.split) for v in listed}
    if given == {True, False}:
        raise UserError(f"{source}: some rows give a split and some do not; give it for every row or for none")
    return listed


def _row_range(row: dict[str, Any], source: Path, number: int) -> tuple[float | None, float | None]:
    """A row's start and end (seconds), both or neither: a row without them is a whole file."""
    given = [row.get(k) not in (None, "") for k in ("start", "end")]
    if not any(given):
        return None, None
    if not all(given):
        raise UserError(f"{source} line {number}: give both start and end (seconds), or neither for a whole file")
    try:
        return float(row["start"]), float(row["end"])
    except (TypeError, ValueError):
        raise UserError(f"{source} line {number}: start and end must be seconds, got {row['start']!r} and "
                        f"{row['end']!r}") from None


def _row_labels(value: Any, source: Path, number: int) -> str:
    """A multi-label row's `labels` (a .csv's "a|b", a .jsonl's ["a", "b"]; empty: none) as one string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return join_labels(split_labels(value))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if any(LABEL_SEPARATOR in v for v in value):
            raise UserError(f"{source} line {number}: a label may not contain {LABEL_SEPARATOR!r}")
        return join_labels([v.strip() for v in value if v.strip()])
    raise UserError(f"{source} line {number}: labels must be a list of strings or a string of labels "
                    f"separated by {LABEL_SEPARATOR!r}, got {value!r}")


def _read_list(source: Path) -> list[dict[str, Any]]:
    suffix = source.suffix.lower()
    try:
        if suffix == ".csv":
            with open(source, newline="") as f:
                rows = list(csv.DictReader(f))
                if rows and not ({"path", "label"} <= set(rows[0]) or {"path", "labels"} <= set(rows[0])):
                    raise UserError(f"{source}: the header must name path and label, or path and labels for "
                                    "several labels per video (and optionally split, group, start, end); "
                                    "a Kinetics list names label, youtube_id, time_start, time_end")
                return rows
        if suffix in (".jsonl", ".json"):
            rows = []
            for number, line in enumerate(source.read_text().splitlines(), start=1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise UserError(f"{source} line {number}: expected an object with path and label")
                    rows.append(row)
            return rows
    except json.JSONDecodeError as err:
        raise UserError(f"{source} line {err.lineno}: not valid JSON ({err.msg})") from None
    except UnicodeDecodeError:
        raise UserError(f"{source} is not a text file: give a .csv or .jsonl list, or a folder") from None
    raise UserError(f"data.videos {source}: a list must be .csv or .jsonl (or give a folder)")


def check_video(path: str, full: bool = False) -> tuple[int, float, float]:
    """(frames, fps, seconds) of a video that decodes, as far as it decodes. Raises ValueError with the
    reason otherwise.

    The header claims a length (its duration or its frame count at its rate, the longer): a frame must
    decode at the start and the middle of that length, and frames must go on to within two frames of
    its end (decoded from the keyframe before the last second), or to `TRUNCATED` of it, when the
    frames and seconds kept are what decodes. `full` decodes every frame instead, keeps their count, and
    also rejects a video where frames the container counts do not decode (damage in the middle, which
    FFmpeg often passes over by dropping frames). A file cut short (a copy that stopped, a full disk)
    often keeps a header that counts every frame."""
    video = video_source("", path)
    if isinstance(video, Path) and os.path.getsize(video) == 0:
        raise ValueError("empty file")
    try:
        with opened(video) as source, av.open(source) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream, frames, fps, seconds = stream_header(container)
            stream.codec_context.thread_count = 1
            if frames <= 0 or fps <= 0:
                raise ValueError("no frames or no frame rate in its header")
            start = float((stream.start_time or 0) * stream.time_base)
            claimed = max(seconds, frames / fps)
            if full:
                times = [frame.time for frame in container.decode(stream) if frame.time is not None]
                if not times:
                    raise ValueError("no frame decodes")
                decoded, last = len(times), max(times) - start
            else:
                # the frame shown at the start and in the middle: seek to the keyframe before it, decode up to it
                for at in (0.0, claimed / 2):
                    if _decodes_from(container, stream, start + at, stop_at=start + at - 1 / fps) is None:
                        raise ValueError(f"no frame decodes at {at:.2f} s of the {claimed:.2f} s its header "
                                         "claims (truncated or damaged)")
                last = _decodes_from(container, stream, start + max(claimed - 1, 0.0))
                decoded = None
                if last is None:  # nothing after the last keyframe: the last frame that decodes from the start
                    last = _decodes_from(container, stream, start)
                last = (last or start) - start
            end = last + 1 / fps  # the last frame stays on screen one frame's time
            if end < TRUNCATED * claimed:
                raise ValueError(f"truncated or damaged: its header claims {frames} frames ({claimed:.2f} s) but frames decode "
                                 f"only to {end:.2f} s; re-encode or remove the file")
            if decoded is not None and decoded < stream.frames:  # the container counts them: each should decode
                raise ValueError(f"damaged: {decoded} of the {stream.frames} frames it holds decode; "
                                 "re-encode or remove the file")
            short = end < claimed - 2 / fps  # a little short: keep what decodes
            if decoded is None:
                decoded = min(frames, round(last * fps) + 1) if short else frames
            return decoded, fps, end if short else seconds
    except av.FFmpegError as err:
        raise ValueError(f"does not decode ({first_line(err)})") from None


# a video whose frames end before this share of the length its header claims is rejected as truncated
TRUNCATED = 0.9


def _decodes_from(container: Any, stream: Any, at: float, stop_at: float | None = None) -> float | None:
    """Seek to the keyframe before `at` (s) and decode on: the time of the first frame at or after `stop_at`,
    or without `stop_at` of the last frame there is; None when none decodes."""
    container.seek(int(at / stream.time_base), stream=stream, backward=True)
    last = None
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        if stop_at is not None and frame.time >= stop_at:
            return frame.time
        last = frame.time if last is None else max(last, frame.time)
    return None if stop_at is not None else last


def _check(args: tuple[str, bool]) -> tuple[str, tuple[int, float, float] | None, str]:
    path, full = args
    try:
        return path, check_video(path, full), ""
    except (ValueError, OSError) as err:  # the video's fault (check_video's reasons, an unreadable file)
        return path, None, first_line(err)


def check_videos(paths: list[Path], full: bool) -> dict[Path, tuple[tuple[int, float, float] | None, str]]:
    """Every video checked, in parallel over the cores, with a progress bar: path -> (probe or None, reason)."""
    workers = max(1, min(os.cpu_count() or 1, len(paths)))
    work = [(str(p), full) for p in paths]
    results = {}
    desc = "decoding every frame" if full else "checking videos (start, middle, end)"
    with ProcessPoolExecutor(workers) as pool:
        for given, (_, probe, reason) in zip(paths, tqdm(pool.map(_check, work, chunksize=4), total=len(work),
                                                         desc=desc, unit="video")):
            results[given] = (probe, reason)
    return results


def group_of(video: Listed, pattern: str) -> str:
    """The video's group: given, else the pattern's first group on the file name, else the file itself."""
    if video.group:
        return video.group
    if pattern:
        match = re.search(pattern, file_name(video.path))
        if match:
            return match.group(1) if match.groups() else match.group(0)
    return file_name(video.path)


def file_name(path: Path | str) -> str:
    """A video's file name, of a path, a URL (without its query) or a row of an Arrow file (the name it gives)."""
    row = ARROW_ROW.match(str(path))
    if row:
        return PurePosixPath(row["name"]).name
    return PurePosixPath(urlsplit(path).path).name if is_url(path) else Path(path).name


def assign_splits(videos: list[Listed], fractions: tuple[float, float, float], pattern: str, seed: int
                  ) -> tuple[dict[Path, str], list[str]]:
    """Each video's split, whole groups at a time, per class (multi-label, or segments of recordings: all
    videos as one class, so a group never straddles splits); and a message per class too small for a split."""
    pooled = any(v.multi_label or v.is_segment for v in videos)
    by_class: dict[str, dict[str, list[Listed]]] = defaultdict(lambda: defaultdict(list))
    for video in videos:
        by_class["all videos" if pooled else video.label][group_of(video, pattern)].append(video)
    split_of, short = {}, []
    for label in sorted(by_class):
        groups = sorted(by_class[label])
        random.Random(f"{seed}/{label}").shuffle(groups)
        counts = _largest_remainder(len(groups), fractions)
        start = 0
        for split, count in zip(SPLITS, counts):
            for group in groups[start:start + count]:
                for video in by_class[label][group]:
                    split_of[video.path] = split
            start += count
        missing = [s for s, f, n in zip(SPLITS, fractions, counts) if f > 0 and n == 0]
        if missing:
            short.append(f"class {label} has {len(groups)} group(s): none left for {' and '.join(missing)}")
    return split_of, short


def _largest_remainder(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """n groups shared in `fractions`, train first: at least one train group, then val and test if any remain."""
    total = sum(fractions)
    exact = [n * f / total for f in fractions]
    counts = [int(e) for e in exact]
    for i in sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    if counts[0] == 0 and n > 0:  # every class needs training videos
        donor = max((1, 2), key=lambda i: counts[i])
        counts[donor] -= 1
        counts[0] += 1
    for i in (1, 2):  # a split with a share but no group gets one from train while train keeps one
        if fractions[i] > 0 and counts[i] == 0 and counts[0] > 1:
            counts[0] -= 1
            counts[i] += 1
    return counts


def write_split_report(rows: list[tuple[str, str]], folder: Path, recordings: Counter[str] | None = None) -> str:
    """Videos (segments) per class per split, as a CSV in `folder` and as the text table returned; a
    multi-label video counts once under each of its labels (and under "(no label)" when it has none).
    `recordings`: the recordings per split the segments come from, a last row of both."""
    counts = Counter((name, split) for label, split in rows for name in split_labels(label) or ["(no label)"])
    labels = sorted({label for label, _ in counts})
    with open(folder / SPLIT_REPORT, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", *SPLITS])
        for label in labels:
            writer.writerow([label, *(counts[label, s] for s in SPLITS)])
        if recordings is not None:
            writer.writerow(["(recordings)", *(recordings[s] for s in SPLITS)])
    width = max(len("recordings") if recordings is not None else len("class"), *(len(label) for label in labels))
    lines = [f"{'class':<{width}}  " + "  ".join(f"{s:>5}" for s in SPLITS)]
    lines += [f"{label:<{width}}  " + "  ".join(f"{counts[label, s]:>5}" for s in SPLITS) for label in labels]
    videos = Counter(split for _, split in rows)
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{videos[s]:>5}" for s in SPLITS))
    if recordings is not None:
        lines.append(f"{'recordings':<{width}}  " + "  ".join(f"{recordings[s]:>5}" for s in SPLITS))
    return "\n".join(lines)
