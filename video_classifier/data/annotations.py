"""Time-ranged annotations as annotators export them, read into rows of (video, label, start, end): Label
Studio's JSON export of a video project, ELAN's .eaf files (through pympi-ling), and the Kinetics lists
(`label,youtube_id,time_start,time_end,split` over a folder of full-length downloads named by id).

Each reader returns `Annotated` rows; user_videos turns them into the folder source's listed videos, checks
the files and their bounds, and adds background. Nothing here opens a video: a Label Studio range is in
frames of the rate the annotator's `<Video frameRate>` used, which the export does not carry, so it stays
in frames (`in_frames`) until the video's rate (or data.annotation_fps) is known.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..core.errors import UserError

# Kinetics lists' columns, as the lists are published (the test list has no label)
KINETICS_COLUMNS = ("youtube_id", "time_start", "time_end")
KINETICS_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov")
LABEL_STUDIO = "Label Studio's JSON export (a list of tasks, each with data.video and annotations[].result)"


@dataclass
class Annotated:
    """One annotated range (or, with start and end None, a label of the whole video)."""

    path: str  # as the annotation names it (resolved by the caller against data.video_dir or the file's folder)
    label: str
    start: float | None = None  # seconds; a Label Studio range: its first frame, 1-based (in_frames)
    end: float | None = None  # seconds; a Label Studio range: its last frame, included (in_frames)
    where: str = ""  # the file and row or task that gave it, for messages
    split: str = ""
    group: str = ""
    in_frames: bool = False


def label_studio(path: Path) -> list[Annotated]:
    """Label Studio's JSON export: `timelinelabels` results (value.ranges of 1-based start/end frames, the last
    included; value.timelinelabels) as ranges, `choices` results as whole-video labels. The task's video is
    data.video (or its only data field); a task's first annotation that was not cancelled is read."""
    tasks = _json(path)
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
        raise UserError(f"{path} is not {LABEL_STUDIO}: expected a JSON list of task objects (a list of videos "
                        "is JSON lines: .jsonl, one object with path and label per line)")
    rows = []
    for number, task in enumerate(tasks, start=1):
        where = f"{path} task {task.get('id', number)}"
        video = _task_video(task, where)
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            continue  # a task not yet annotated
        for result in annotations[0].get("result") or []:
            value = result.get("value") or {}
            if result.get("type") == "timelinelabels":
                for labels_range in value.get("ranges") or []:
                    for label in value.get("timelinelabels") or []:
                        rows.append(Annotated(video, label, float(labels_range["start"]), float(labels_range["end"]),
                                              where, in_frames=True))
            elif result.get("type") == "choices":
                rows += [Annotated(video, label, where=where) for label in value.get("choices") or []]
    if not rows:
        raise UserError(f"{path}: no task has a timelinelabels or choices result: annotate the videos, or "
                        "export the project again (JSON)")
    return rows


def _task_video(task: dict[str, Any], where: str) -> str:
    """A task's video: data.video, or its one data value; Label Studio's upload URLs (`/data/upload/3/x.mp4`,
    `?d=` local-files links) as their file path."""
    data = task.get("data")
    if not isinstance(data, dict) or not data:
        raise UserError(f"{where} has no `data` key: not {LABEL_STUDIO}, and a list of videos is JSON lines "
                        "(.jsonl, one object with path and label per line)")
    value = data.get("video", next(iter(data.values())) if len(data) == 1 else None)
    if not isinstance(value, str) or not value:
        raise UserError(f"{where}: data.video is missing (data has {', '.join(sorted(data))}): name the "
                        "video field `video` in the labeling config")
    parts = urlsplit(value)
    if parts.query.startswith("d="):  # local files storage: /data/local-files/?d=folder/x.mp4
        return unquote(parts.query[2:])
    return unquote(parts.path) if parts.scheme in ("", "http", "https") and not parts.netloc else value


def elan(source: Path, tier: str | None) -> list[Annotated]:
    """ELAN .eaf files (a file, or a folder of them): the annotations of tier `tier` (data.elan_tier; the only
    tier where a file has one), each file's media from its own media descriptor (RELATIVE_MEDIA_URL, else
    MEDIA_URL), relative to the .eaf file."""
    from pympi.Elan import Eaf

    files = sorted(source.glob("*.eaf")) if source.is_dir() else [source]
    rows = []
    for file in files:
        try:
            eaf = Eaf(str(file))
        except Exception as err:  # pympi raises what its XML parser raises, or a bare Exception for a version
            raise UserError(f"{file} does not read as an ELAN file ({type(err).__name__}: {err}): export it "
                            "from ELAN again") from None
        names = list(eaf.get_tier_names())
        name = tier or (names[0] if len(names) == 1 else None)
        if name not in names:
            raise UserError(f"{file}: " + (f"no tier {tier!r}" if tier else f"{len(names)} tiers")
                            + f" (it has {', '.join(names) or 'none'}): set data.elan_tier to one of them")
        media = _elan_media(eaf, file)
        for start_ms, end_ms, value, *_ in eaf.get_annotation_data_for_tier(name):
            if str(value).strip():
                rows.append(Annotated(media, str(value).strip(), start_ms / 1000, end_ms / 1000,
                                      f"{file} tier {name} at {start_ms / 1000:.3f} s"))
    if not rows:
        raise UserError(f"{source}: no annotation in " + (f"tier {tier!r}" if tier else "any .eaf file"))
    return rows


def _elan_media(eaf: Any, file: Path) -> str:
    for descriptor in eaf.media_descriptors:
        if not str(descriptor.get("MIME_TYPE", "video")).startswith(("video", "application")):
            continue  # a sound file linked beside the video
        for key in ("RELATIVE_MEDIA_URL", "MEDIA_URL"):
            url = descriptor.get(key)
            if url:
                path = unquote(urlsplit(url).path) if url.startswith("file:") else url
                resolved = (file.parent / path).resolve()
                if key == "MEDIA_URL" or resolved.exists():
                    return str(resolved)
    raise UserError(f"{file} links no video (no MEDIA_DESCRIPTOR): link the video in ELAN and save again")


def kinetics(path: Path, video_dir: Path) -> tuple[list[Annotated], list[str]]:
    """A Kinetics list over `video_dir` (downloads named `<youtube_id>.<ext>`): its rows, and the ids whose
    download is missing (counted and listed, not fatal)."""
    rows, missing = [], []
    with open(path, newline="") as f:
        for number, row in enumerate(csv.DictReader(f), start=2):
            found = next((video_dir / f"{row['youtube_id']}{s}" for s in KINETICS_SUFFIXES
                          if (video_dir / f"{row['youtube_id']}{s}").is_file()), None)
            if found is None:
                if row["youtube_id"] not in missing:
                    missing.append(row["youtube_id"])
                continue
            where = f"{path} line {number}"
            try:
                start, end = float(row["time_start"]), float(row["time_end"])
            except ValueError:
                raise UserError(f"{where}: time_start and time_end must be seconds") from None
            split = {"validate": "val", "validation": "val"}.get(row.get("split", ""), row.get("split", ""))
            rows.append(Annotated(str(found), (row.get("label") or "").strip(), start, end, where, split,
                                  group=row["youtube_id"]))
    return rows, missing


def is_kinetics(header: list[str]) -> bool:
    return set(KINETICS_COLUMNS) <= set(header)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} line {err.lineno}: not valid JSON ({err.msg})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file") from None


def looks_like_label_studio(path: Path) -> bool:
    """A .json file holding one JSON list (Label Studio's export), not JSON lines (a list of videos)."""
    try:
        with open(path) as f:
            return f.read(64).lstrip().startswith("[")
    except (OSError, UnicodeDecodeError):
        return False
