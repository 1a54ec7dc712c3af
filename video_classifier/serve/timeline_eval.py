"""eval.py --timeline: the timeline over each whole recording of a split, against its annotations.

The annotated timeline is the manifest's segments of the recording (the background class's drawn segments
left out: what no annotation covers is background); the predicted one is the timeline at its defaults
(timeline.py). Both are compared frame by frame at the recording's own rate (frame accuracy), as segments
(segmental F1 at IoU 0.10/0.25/0.50 and the edit score, MS-TCN's), as detections (ActivityNet's AP at tIoU
0.3/0.5/0.7, a segment scored by its label's mean probability), and by false alarms (action segments that
overlap no annotation of their label) per hour of background. Split-level F1 sums the recordings' counts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import Config
from ..core.errors import DecodeError, UserError, first_line
from ..data.decoding import Decoding
from ..data.manifest import VideoRecord, first_frame_at
from ..engine import segmental
from ..engine.model_card import add_timeline
from ..model.model_spec import ModelSpec
from ..model.unknown import UNKNOWN
from .timeline import SWITCH_COST, Segment, timeline

F1_OVERLAPS = (0.10, 0.25, 0.50)
MAP_IOUS = (0.3, 0.5, 0.7)
PICTURES = 4  # recordings drawn per split


def recordings_of(records: list[VideoRecord], background: str | None) -> dict[str, list[VideoRecord]]:
    """The split's recordings (files with segments) and their annotated segments, background's left out."""
    files: dict[str, list[VideoRecord]] = defaultdict(list)
    for r in records:
        files[r.path].append(r)
    out = {path: [r for r in mine if r.label != background] for path, mine in files.items()
           if any(r.start for r in mine) or len(mine) > 1}
    if not out:
        raise UserError("eval.py --timeline compares timelines with annotated recordings; this split holds whole "
                        "clips only: prepare a list with start/end (docs/data.md#untrimmed-recordings)")
    return out


def frame_labels(segments: list[tuple[str, float, float]], frames: int, fps: float, background: str) -> list[str]:
    """Each frame's label (its time k / fps inside a segment), `background` elsewhere."""
    labels = [background] * frames
    for label, start, end in segments:
        for k in range(first_frame_at(start, fps), min(frames, first_frame_at(end, fps))):
            labels[k] = label
    return labels


def evaluate_timelines(model: Any, spec: ModelSpec, config: Config, records: list[VideoRecord], decoding: Decoding,
                       out: Path, split: str) -> dict[str, Any]:
    """The split's timeline metrics (eval_<split>_timeline.json) and a picture per recording (the first few)."""
    background = config.data.background or "(none)"
    out.mkdir(parents=True, exist_ok=True)
    per_recording, counts = {}, {k: np.zeros(3, int) for k in F1_OVERLAPS}
    detections: dict[str, list] = defaultdict(list)
    truths: dict[str, list] = defaultdict(list)
    alarms, background_seconds, frames_right, frames_all = 0, 0.0, 0, 0
    pictures: list[str] = []
    for n, (path, mine) in enumerate(sorted(recordings_of(records, config.data.background).items())):
        try:
            result = timeline(model, spec, Path(path), decoding, None, config.eval.batch_size)
        except DecodeError as err:
            raise UserError(f"{first_line(err)}; check that the file plays") from None
        predicted = [s for s in result.segments(result.default_min_segment(), SWITCH_COST)
                     if s.label not in (background, UNKNOWN)]  # unknown, like background: nothing of interest
        annotated = [(r.label, r.start, r.start + r.duration) for r in mine]
        frames = max(1, round(result.duration * result.fps))
        p = frame_labels([(s.label, s.start, s.end) for s in predicted], frames, result.fps, background)
        a = frame_labels(annotated, frames, result.fps, background)
        entry = {"frame_accuracy": segmental.frame_accuracy(p, a), "edit": segmental.edit_score(p, a, background)}
        for k in F1_OVERLAPS:
            found = segmental.f1_counts([(s.label, s.start, s.end) for s in predicted], annotated, k)
            counts[k] += found
            entry[f"f1@{k:.2f}"] = segmental.f1_score(*found)
        idle = sum(label == background for label in a) / result.fps
        entry["false_alarms"] = segmental.false_alarms([(s.label, s.start, s.end) for s in predicted], annotated)
        entry["background_seconds"] = idle
        entry["actions"] = len(annotated)
        entry["actions_found"] = segmental.actions_found([(s.label, s.start, s.end) for s in predicted], annotated)
        per_recording[path] = entry
        alarms, background_seconds = alarms + entry["false_alarms"], background_seconds + idle
        frames_right, frames_all = frames_right + sum(x == y for x, y in zip(p, a)), frames_all + frames
        for s in predicted:
            detections[s.label].append((s.score, s.start, s.end, path))
        for label, start, end in annotated:
            truths[label].append((start, end, path))
        if n < PICTURES:
            pictures.append(f"timeline_{split}_{Path(path).stem}.png")
            plot_against(predicted, annotated, result.duration, out / pictures[-1])
    metrics = {"frame_accuracy": frames_right / frames_all,
               **{f"f1@{k:.2f}": segmental.f1_score(*counts[k]) for k in F1_OVERLAPS},
               "edit": float(np.mean([e["edit"] for e in per_recording.values()])),
               **{f"map@{t}": _mean_ap(detections, truths, t) for t in MAP_IOUS},
               "false_alarms_per_hour": alarms / (background_seconds / 3600) if background_seconds else None,
               "actions": sum(e["actions"] for e in per_recording.values()),
               "actions_found": sum(e["actions_found"] for e in per_recording.values()),
               "recordings": len(per_recording), "per_recording": per_recording}
    (out / f"eval_{split}_timeline.json").write_text(json.dumps(metrics, indent=2) + "\n")
    add_timeline(out, metrics, split, pictures)  # the run folder's model card, where there is one
    return metrics


def _mean_ap(detections: dict[str, list], truths: dict[str, list], threshold: float) -> float:
    return float(np.mean([segmental.average_precision(detections.get(label, []), truths[label], threshold)
                          for label in sorted(truths)]))


def plot_against(predicted: list[Segment], annotated: list[tuple[str, float, float]], duration: float,
                 path: Path) -> None:
    """The predicted timeline above the annotated one, a colour per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({s.label for s in predicted} | {label for label, _, _ in annotated})
    colours = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(max(8.0, min(24.0, duration / 8)), 2.4))
    for row, spans in ((1, [(s.label, s.start, s.end) for s in predicted]), (0, annotated)):
        for label, start, end in spans:
            ax.broken_barh([(start, end - start)], (row + 0.1, 0.8), color=colours[label])
    ax.set_yticks([0.5, 1.5], ["annotated", "predicted"])
    ax.set_xlim(0, duration)
    ax.set_xlabel("seconds (blank: background)")
    ax.legend(handles=[matplotlib.patches.Patch(color=colours[label], label=label) for label in labels],
              loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=min(len(labels), 8), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_timeline_metrics(metrics: dict[str, Any], split: str, out: Path) -> str:
    alarms = metrics["false_alarms_per_hour"]
    return (f"{split} timelines of {metrics['recordings']} recordings: frame accuracy {metrics['frame_accuracy']:.4f}; "
            + ", ".join(f"{k} {metrics[k]:.4f}" for k in ("f1@0.10", "f1@0.25", "f1@0.50", "edit", "map@0.3",
                                                          "map@0.5", "map@0.7"))
            + f"; {metrics['actions_found']} of {metrics['actions']} annotated actions found"
            + f"; false alarms {'-' if alarms is None else f'{alarms:.1f}'} per hour of background "
            f"(eval_{split}_timeline.json, pictures in {out})")
