"""What happens when, over a long video: one clip slid along it, in flat memory.

A window is one clip (num_frames x stride of the training) starting every
`stride` seconds (default half a clip). Windows are decoded a batch at a time,
only the frames they use, so memory does not grow with the video's length. Each
window is scored from its centre crop, as 1 clip x 1 crop scores a video.

Each window gets a label: the sequence of labels that maximises the summed
log-probability of the windows minus `switch_cost` nats per change of label
(Viterbi). At 0 that is each window's top label; above it, a few windows that
hesitate between two classes no longer cut a scene in pieces, while a change
that several windows agree on still pays for itself. Consecutive windows with
the same label form a segment; a segment shorter than `min_segment` seconds
(by default two windows' length, MIN_SEGMENT_WINDOWS) is merged into its
neighbour. Each boundary is then placed, within a window of
where the labels change, at the time whose share of each class in the windows
around it best matches what those windows said (Timeline.place_cut).

A multi-label model's classes are independent: each class gets its own
intervals, where it is on, by the same Viterbi rule over two states (on where
its score beats its threshold, `switch_cost` per switch); intervals of
different classes may overlap.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.clips import decode_clip
from ..data.decoding import Decoding
from ..data.manifest import probe_video
from ..data.preprocessing import MultiCropTransform, clip_frame_indices, exact_fps
from ..model.model_spec import ModelSpec
from ..model.unknown import UNKNOWN
from .timeline_defaults import MIN_SEGMENT_WINDOWS, SWITCH_COST


@dataclass
class Segment:
    start: float
    end: float
    label: str
    score: float  # the label's mean probability over the segment's windows


@dataclass
class Timeline:
    video: str
    duration: float
    window: float  # seconds one window covers
    stride: float
    starts: list[float]
    probs: torch.Tensor  # (windows, classes)
    labels: list[str]  # class names by id
    fps: float  # the video's average frame rate: no segment is shorter than one frame
    thresholds: tuple[float, ...] | None = None  # multi-label: each class's threshold (per-class intervals)
    unknown: float | None = None  # single-label: infer.unknown's threshold, below which a window is `unknown`
    emission: torch.Tensor | None = None  # what the label path scores where it is not `probs` (unknown's)

    def with_unknown_state(self) -> "Timeline":
        """The timeline with `unknown` as one more state, whose probability is 1 - the top score m. The label
        path scores a class p / t and unknown (1 - m) / (1 - t), the two-state rule of class_intervals: at
        switch_cost 0 a window is unknown exactly where m < t, a sure window (m near 1) pays many nats to be
        called unknown, and the smoother keeps or merges unknown stretches as it does the classes'.
        Scaling every class by 1 / t leaves their choices among themselves as they were."""
        t = min(float(self.unknown), 1 - 1e-6)
        top = self.probs.max(-1, keepdim=True).values
        return replace(self, probs=torch.cat([self.probs, 1 - top], 1), labels=[*self.labels, UNKNOWN], unknown=None,
                       emission=torch.cat([self.probs / t, (1 - top) / (1 - t)], 1))

    def default_min_segment(self) -> float:
        """The shortest segment kept when none is asked for: MIN_SEGMENT_WINDOWS windows."""
        return round(MIN_SEGMENT_WINDOWS * self.window, 3)

    def class_intervals(self, min_segment: float = 0.0, switch_cost: float = SWITCH_COST) -> list[Segment]:
        """Multi-label: for each class, the stretches where it is on (two-state Viterbi: on scores p / t,
        off (1 - p) / (1 - t), so at switch_cost 0 a window is on where p >= t), bounded half-way between
        window centres; stretches shorter than `min_segment` dropped. Sorted by start."""
        centres = [s + self.window / 2 for s in self.starts]
        out = []
        for c, name in enumerate(self.labels):
            p, t = self.probs[:, c].double(), float(self.thresholds[c])
            # a score at its threshold is on, as MultiLabel.predicted has it: there "off" loses the tie by 1e-9
            off = torch.where(p == t, (1 - p) / (1 - t) * (1 - 1e-9), (1 - p) / (1 - t))
            on = label_path(torch.stack([off, p / t], -1), switch_cost)
            k = 0
            while k < len(on):
                if not on[k]:
                    k += 1
                    continue
                first = k
                while k + 1 < len(on) and on[k + 1]:
                    k += 1
                start = 0.0 if first == 0 else (centres[first - 1] + centres[first]) / 2
                end = self.duration if k == len(on) - 1 else (centres[k] + centres[k + 1]) / 2
                if end - start >= min_segment:
                    out.append(Segment(round(start, 3), round(end, 3), name,
                                       round(float(p[first:k + 1].mean()), 4)))
                k += 1
        return sorted(out, key=lambda segment: (segment.start, segment.label))

    def segments(self, min_segment: float = 0.0, switch_cost: float = SWITCH_COST,
                 place_cuts: bool = True) -> list[Segment]:
        """Segments of the label path; `place_cuts` False leaves each cut half-way between the centres of
        the windows either side of it (bench/timeline.py compares the two). Multi-label: class_intervals."""
        if self.thresholds is not None:
            return self.class_intervals(min_segment, switch_cost)
        if self.unknown is not None:
            return self.with_unknown_state().segments(min_segment, switch_cost, place_cuts)
        top = label_path(self.probs if self.emission is None else self.emission, switch_cost)
        centres = [s + self.window / 2 for s in self.starts]

        def runs() -> list[list[int]]:  # window indices of each stretch of one top label
            out: list[list[int]] = []
            for i, label in enumerate(top):
                if out and top[out[-1][-1]] == label:
                    out[-1].append(i)
                else:
                    out.append([i])
            return out

        def bounds(run: list[int]) -> tuple[float, float]:  # half-way between neighbouring windows' centres
            first, last = run[0], run[-1]
            start = 0.0 if first == 0 else (centres[first - 1] + centres[first]) / 2
            end = self.duration if last == len(centres) - 1 else (centres[last] + centres[last + 1]) / 2
            return start, end

        def length(run: list[int]) -> float:
            start, end = bounds(run)
            return end - start

        stretches = runs()
        while len(stretches) > 1:  # the shortest stretch under min_segment takes its longer neighbour's label
            k = min(range(len(stretches)), key=lambda j: length(stretches[j]))
            if length(stretches[k]) >= min_segment:
                break
            neighbours = [j for j in (k - 1, k + 1) if 0 <= j < len(stretches)]
            into = max(neighbours, key=lambda j: length(stretches[j]))
            for i in stretches[k]:
                top[i] = top[stretches[into][0]]
            stretches = runs()
        cuts = [bounds(run)[0] for run in stretches[1:]]
        if place_cuts:
            for k, (before, after) in enumerate(zip(stretches, stretches[1:])):
                low = max(cuts[k - 1] if k else 0.0, cuts[k] - self.window)
                high = min(cuts[k + 1] if k + 1 < len(cuts) else self.duration, cuts[k] + self.window)
                cuts[k] = self.place_cut(before + after, top[before[0]], top[after[0]], low, high)
        edges = [0.0, *cuts, self.duration]
        pieces = [(edges[k], edges[k + 1], run) for k, run in enumerate(stretches)]
        pieces = _at_least_one_frame(pieces, [top[run[0]] for run in stretches], 1 / self.fps)
        return [Segment(round(start, 3), round(end, 3), self.labels[top[run[0]]],
                        round(float(self.probs[run, top[run[0]]].mean()), 4)) for start, end, run in pieces]

    def place_cut(self, windows: list[int], a: int, b: int, low: float, high: float) -> float:
        """Where in [low, high] the video turns from class `a` to `b`, read off those of `windows` (the two
        segments') that overlap it.

        A window [s, s + L] holds a share f = clip((c - s) / L, 0, 1) of `a` when the cut is at c; the
        cut is the c (on a 10 ms grid; the middle of the best, where several fit alike) whose shares
        best match the windows' p_a / (p_a + p_b), weighted by p_a + p_b. Windows that give `a` and `b`
        together less than half their probability saw neither (a mix of two motions can look like a
        third) and are left out."""
        starts = torch.tensor([self.starts[i] for i in windows], dtype=torch.float64)
        near = (starts + self.window > low) & (starts < high)
        probs = self.probs[windows][near].double()
        p_a, p_b = probs[:, a], probs[:, b]
        seen = p_a + p_b >= 0.5
        share, weight, starts = p_a[seen] / (p_a + p_b)[seen], (p_a + p_b)[seen], starts[near][seen]
        grid = torch.arange(math.ceil(low * 100), math.floor(high * 100) + 1, dtype=torch.float64) / 100
        if not len(grid):
            return (low + high) / 2
        fits = ((grid[:, None] - starts[None, :]) / self.window).clamp(0, 1)
        error = (weight * (share - fits) ** 2).sum(1)
        return float(grid[error <= error.min() + 1e-9].mean())


def _at_least_one_frame(pieces: list[tuple[float, float, list[int]]], labels: list[int], frame: float
                        ) -> list[tuple[float, float, list[int]]]:
    """(start, end, windows) segments with those shorter than one frame removed: two cuts placed within a
    frame of each other (or of the video's ends) meet half-way, and neighbours that then share a label
    become one segment."""
    pieces, labels = list(pieces), list(labels)
    k = 0
    while k < len(pieces):
        start, end, _ = pieces[k]
        if len(pieces) == 1 or end - start >= frame:
            k += 1
            continue
        if k == 0:
            pieces[1] = (start, *pieces[1][1:])
        elif k == len(pieces) - 1:
            pieces[k - 1] = (pieces[k - 1][0], end, pieces[k - 1][2])
        else:
            middle = (start + end) / 2
            pieces[k - 1] = (pieces[k - 1][0], middle, pieces[k - 1][2])
            pieces[k + 1] = (middle, *pieces[k + 1][1:])
        del pieces[k], labels[k]
        k = max(k - 1, 0)
        if k + 1 < len(pieces) and labels[k] == labels[k + 1]:  # the same label either side: one segment
            pieces[k] = (pieces[k][0], pieces[k + 1][1], pieces[k][2] + pieces[k + 1][2])
            del pieces[k + 1], labels[k + 1]
    return pieces


def label_path(probs: torch.Tensor, switch_cost: float) -> list[int]:
    """The label of each window (probs: windows x classes) on the path that maximises the summed
    log-probability minus `switch_cost` per change of label: Viterbi, O(windows x classes)."""
    log_p = np.log(np.clip(probs.double().numpy(), 1e-12, None))
    windows, classes = log_p.shape
    score, came_from = log_p[0].copy(), np.empty((windows, classes), np.int64)
    stay = np.arange(classes)
    for t in range(1, windows):
        best = int(score.argmax())  # the best path to switch from, whatever label comes next
        switch = score[best] - switch_cost > score
        came_from[t] = np.where(switch, best, stay)
        score = np.where(switch, score[best] - switch_cost, score) + log_p[t]
    path = [int(score.argmax())]
    for t in range(windows - 1, 0, -1):
        path.append(int(came_from[t][path[-1]]))
    return path[::-1]


def window_starts(duration: float, window: float, stride: float) -> list[float]:
    """Starts of windows `stride` apart while a whole window fits (at least one)."""
    count = max(1, math.floor((duration - window) / stride + 1e-9) + 1)
    return [round(k * stride, 6) for k in range(count)]


@torch.inference_mode()
def timeline(model: Any, spec: ModelSpec, path: Path, decoding: Decoding, stride: float | None = None,
             batch_size: int = 16) -> Timeline:
    """Slide one clip over the video; decode and score `batch_size` windows at a time."""
    frames, fps, duration = probe_video(path)
    decode = decoding.reader(path, fps)
    length = spec.preprocess.clip_duration(fps)
    stride = stride or float(length) / 2
    starts = window_starts(duration, float(length), stride)
    crop = MultiCropTransform(spec.preprocess, 1)
    rate, probs = exact_fps(fps), []
    for first in tqdm(range(0, len(starts), batch_size), desc=path.name, unit="batch", leave=False):
        clips = [decode_clip(decode, path, window_indices(start, length, rate, frames, spec.preprocess.num_frames),
                             fps) for start in starts[first:first + batch_size]]
        probs.append(score_windows(model, spec, crop, clips))
    labels, thresholds = class_names(spec)
    return Timeline(str(path), duration, float(length), stride, starts, torch.cat(probs), labels, fps, thresholds,
                    spec.unknown)


def window_indices(start: float, length: Fraction, rate: Fraction, total: int, num_frames: int) -> list[int]:
    """The frames (numbers at `rate`) a window starting at `start` seconds scores: the clip's frames."""
    begin = Fraction(start).limit_denominator(1000)
    return clip_frame_indices(begin, begin + length, rate, total, num_frames)


def score_windows(model: Any, spec: ModelSpec, crop: MultiCropTransform, clips: list[torch.Tensor]) -> torch.Tensor:
    """(windows, classes) scores of decoded clips, each from its centre crop, as 1 clip x 1 crop scores."""
    return spec.task.scores(spec.logits(model, torch.cat([crop(clip) for clip in clips]))).cpu()


def class_names(spec: ModelSpec) -> tuple[list[str], tuple[float, ...] | None]:
    """The class names by id, and a multi-label task's thresholds (None for one label per video)."""
    labels = [spec.id2label[i] for i in range(len(spec.id2label))]
    vector = getattr(spec.task, "threshold_vector", None)
    return labels, tuple(vector(len(labels)).tolist()) if vector else None


def write_timeline(result: Timeline, segments: list[Segment], out: Path, top_k: int, min_segment: float,
                   switch_cost: float) -> dict[str, Path]:
    """`<stem>.timeline.json` (windows' top-k, multi-label every class's score, and `segments`, made with `min_segment` and `switch_cost`),
    `.csv` (one row per window and label) and `.png` (each class's probability over time, segments
    shaded) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(result.video).stem}.timeline"  # clip.mp4 -> clip.timeline.json, .csv, .png
    # multi-label: every class's score, so each window shows the classes that reach their thresholds
    k = len(result.labels) if result.thresholds is not None else min(top_k, len(result.labels))
    scores, ids = result.probs.topk(k, dim=-1)
    windows = [{"start": s, "end": round(s + result.window, 6),
                "top": [{"label": result.labels[i], "score": round(v, 6)} for i, v in zip(row_ids, row_scores)]}
               for s, row_ids, row_scores in zip(result.starts, ids.tolist(), scores.tolist())]
    paths = {kind: out / f"{stem}.{kind}" for kind in ("json", "csv", "png")}
    paths["json"].write_text(json.dumps({
        "video": result.video, "duration": result.duration, "fps": result.fps, "window": result.window,
        "stride": result.stride, "min_segment": min_segment, "switch_cost": switch_cost, "segments": [asdict(s) for s in segments],
        "windows": windows}, indent=1) + "\n")
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["start", "end", "rank", "label", "score"])
        for w in windows:
            for rank, top in enumerate(w["top"], start=1):
                writer.writerow([w["start"], w["end"], rank, top["label"], top["score"]])
    plot_timeline(result, segments, paths["png"])
    return paths


def plot_timeline(result: Timeline, segments: list[Segment], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = [s + result.window / 2 for s in result.starts]
    fig, ax = plt.subplots(figsize=(max(8.0, min(24.0, result.duration / 10)), 3.5))
    colours = plt.get_cmap("tab10" if len(result.labels) <= 10 else "tab20")
    colour = {label: colours(i % colours.N) for i, label in enumerate(result.labels)}
    for segment in segments:
        ax.axvspan(segment.start, segment.end, color=colour.get(segment.label, "grey"), alpha=0.12, lw=0)
    if result.unknown is not None:  # below it a window is unknown (grey where the timeline says so)
        ax.axhline(result.unknown, color="grey", linestyle=":", lw=1, label=f"{UNKNOWN} below")
    shown = [i for i in range(len(result.labels)) if result.probs[:, i].max() > 0.2] or list(range(len(result.labels)))
    for i in shown:
        ax.plot(centres, result.probs[:, i].tolist(), color=colour[result.labels[i]], label=result.labels[i], lw=1.2)
    ax.set_xlim(0, result.duration)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("seconds")
    ax.set_ylabel("probability")
    ax.set_title(f"{Path(result.video).name}: {len(segments)} segments (shaded)")
    ax.legend(fontsize=7, loc="upper right", ncol=min(4, len(shown)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
