"""The prepared-folder format: a folder's videos as `VideoRecord`s in manifest.csv, its label maps and task
in labels.json, and what it was prepared from in prepared_from.json; read and written here, by prepare.py,
shards.py and every script that trains or scores on a prepared folder (or shards' folder or URL)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path

from ..core.errors import DecodeError, UserError
from ..core.task import MultiLabel, SingleLabel, split_labels
from .decoding import probe_header
from .preprocessing import PreprocessSpec, exact_fps
from .storage import is_url, read_bytes

MANIFEST = "manifest.csv"
LABELS = "labels.json"
SOURCE_RECORD = "prepared_from.json"


@dataclass
class VideoRecord:
    path: str  # relative to the data root
    label: str  # multi-label: the labels joined by task.LABEL_SEPARATOR ("" for none)
    split: str
    group: str
    frames: int  # a segment: the frames of its span
    fps: float
    duration: float  # seconds; a segment: end - start
    # a segment of a recording (a list row with start/end): where its span begins in the file, in seconds.
    # Its frames are the file's from first_frame on, so everything that samples clips samples the span as
    # it samples a short file, and the decoder seeks into the recording: nothing is cut
    start: float = 0.0

    @property
    def first_frame(self) -> int:
        """The file's index of the record's frame 0: the first frame shown at or after `start`."""
        return first_frame_at(self.start, self.fps)

    def clip_indices(self, spec: PreprocessSpec, start: Fraction, end: Fraction) -> list[int]:
        """The file's frames of the clip [start, end) seconds into the record (spec.frame_indices over the
        record's own frames, shifted to where the record begins in the file)."""
        first = self.first_frame
        return [first + i for i in spec.frame_indices(start, end, self.fps, self.frames)]


def first_frame_at(start: float, fps: float) -> int:
    """The index of the first frame of a constant-rate video shown at or after `start` seconds."""
    return math.ceil(Fraction(start).limit_denominator(10**6) * exact_fps(fps)) if start > 0 else 0


def segment_frames(start: float, end: float, fps: float, total: int) -> int:
    """The frames of a file of `total` frames shown in [start, end) seconds (at least one)."""
    first = first_frame_at(start, fps)
    return max(1, min(first_frame_at(end, fps), total) - first)


def probe_video(path: Path) -> tuple[int, float, float]:
    """(frames, fps, duration in s) from the container; a file that does not open is a one-line error."""
    try:
        return probe_header(path)
    except DecodeError as err:
        raise UserError(f"{err}; remove or replace the file") from None


def write_labels(records: list[VideoRecord], root: Path, multi_label: bool = False) -> list[str]:
    """labels.json: the label maps, and the task the labels make (multi-label: several per video)."""
    names = split_labels if multi_label else (lambda label: [label])
    labels = sorted({name for r in records if r.split == "train" for name in names(r.label)})
    unknown = sorted({name for r in records for name in names(r.label)} - set(labels))
    if unknown:
        raise UserError(f"classes {unknown} have val/test videos but no train videos: every class needs training data")
    if not labels:
        raise UserError("no training video has a label: label some videos")
    label2id = {label: i for i, label in enumerate(labels)}
    data = {"label2id": label2id, "id2label": {str(i): label for label, i in label2id.items()},
            "task": (MultiLabel if multi_label else SingleLabel).name}
    (root / LABELS).write_text(json.dumps(data, indent=2) + "\n")
    return labels


def manifest_fields(records: list[VideoRecord]) -> list[str]:
    """manifest.csv's columns: VideoRecord's fields, `start` only where some record is a segment that does not
    begin at 0 s (a list of whole files writes the manifest it always wrote)."""
    names = [f.name for f in fields(VideoRecord)]
    return names if any(r.start for r in records) else [n for n in names if n != "start"]


def write_manifest(records: list[VideoRecord], root: Path) -> None:
    columns = manifest_fields(records)
    with open(root / MANIFEST, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: v for k, v in asdict(r).items() if k in columns} for r in records)


def prepared_task(root: str | Path) -> str:
    """The task the labels of a prepared folder (or shards' folder or URL) make: "single_label" or
    "multi_label" (labels.json)."""
    return json.loads(read_bytes(root, LABELS)).get("task", SingleLabel.name)


def load_prepared(root: str | Path) -> tuple[dict[str, int], list[VideoRecord]]:
    """label2id and the manifest of a prepared folder, or of shards (a folder or a URL: shards.py)."""
    if not is_url(str(root)) and (not (Path(root) / MANIFEST).is_file() or not (Path(root) / LABELS).is_file()):
        raise UserError(
            f"data folder {root} is missing or not prepared (no {MANIFEST}/{LABELS}): "
            "run `python prepare_data.py --config <your config>` first"
        )
    label2id = json.loads(read_bytes(root, LABELS))["label2id"]
    rows = csv.DictReader(io.StringIO(read_bytes(root, MANIFEST).decode()))
    records = [
        VideoRecord(r["path"], r["label"], r["split"], r["group"], int(r["frames"]), float(r["fps"]), float(r["duration"]),
                    float(r.get("start") or 0.0))
        for r in rows
    ]
    return label2id, records


def copy_labels(root: str | Path, out: Path) -> None:
    """labels.json of a prepared folder (or shards' URL) into `out`."""
    (out / LABELS).write_bytes(read_bytes(root, LABELS))
