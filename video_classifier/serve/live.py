"""Live classification: frames as they arrive (a camera, a stream URL), scored as infer.py --timeline scores a file.

Frames come one at a time with the second they were shown at. They are laid on a grid of frames at the
source's rate, as decode_pyav reads a file: grid frame n is the frame on screen at (n + 0.5) / fps, the
last one shown at or before then (a camera's frame holds until the next). Window k is then the timeline's
window k (a clip starting every `stride` seconds, half a clip by default) over the same frames, scored from
its centre crop by the timeline's own functions as soon as its last frame is known. What is shown is the
end of the timeline of the windows so far: Timeline.segments at the timeline's defaults (switch cost, and
segments shorter than two windows merged), so the live label does not flicker and, on the same frames,
live scoring and --timeline give the same segments (tests/test_live.py).

Memory stays flat: only the frames that windows still to be scored use are kept, and the windows of the
last HISTORY_S seconds. Where scoring falls behind the source (a big model on a small CPU), `newest_only`
scores the newest ready window and skips the ones before it, so the label stays current.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch

from ..data.preprocessing import MultiCropTransform, exact_fps
from ..model.model_spec import ModelSpec
from .timeline import SWITCH_COST, Segment, Timeline, class_names, score_windows, window_indices

HISTORY_S = 600.0  # windows older than this are forgotten: the label path of a camera open for hours stays cheap
UNBOUNDED = 2**62  # a live source's frame count: unknown, so no window is cut short by it


@dataclass
class LiveTimeline:
    """One live source's frames, windows and labels (see the module's docstring). `fps`: the source's frame
    rate (a camera's: the rate the page samples it at)."""

    model: Any
    spec: ModelSpec
    fps: float
    name: str = "live"
    stride: float | None = None
    min_segment: float | None = None  # None: the timeline's default (two windows)
    switch_cost: float = SWITCH_COST
    history_s: float = HISTORY_S
    batch_size: int = 8
    rate: Fraction = field(init=False)
    length: Fraction = field(init=False)
    grid: dict[int, torch.Tensor] = field(init=False, default_factory=dict)  # grid frame number -> (C, H, W)
    filled: int = field(init=False, default=0)  # grid frames known: 0 .. filled - 1
    shown: tuple[float, torch.Tensor] | None = field(init=False, default=None)  # the frame on screen, since when
    starts: list[float] = field(init=False, default_factory=list)  # scored windows' starts (s)
    probs: list[torch.Tensor] = field(init=False, default_factory=list)  # their (classes,) scores
    next_window: int = field(init=False, default=0)  # the number of the first window not scored nor skipped
    skipped: int = field(init=False, default=0)
    added: int = field(init=False, default=0)  # windows scored since the start (history kept or not)

    def __post_init__(self) -> None:
        self.rate = exact_fps(self.fps)
        self.length = self.spec.preprocess.clip_duration(self.fps)
        self.stride = self.stride or float(self.length) / 2
        self.crop = MultiCropTransform(self.spec.preprocess, 1)
        self.labels, self.thresholds = class_names(self.spec)

    @property
    def seconds(self) -> float:
        """How much of the source the grid holds, in seconds."""
        return self.filled / float(self.rate)

    def push(self, at: float, frame: torch.Tensor) -> None:
        """The frame (C, H, W) uint8 shown from `at` seconds on (times from the source's first frame)."""
        if self.shown is not None:
            self._fill_until(at, self.shown[1])
        self.shown = (at, frame)

    def end(self) -> None:
        """The source ended: its last frame stays on screen for one frame's time."""
        if self.shown is not None:
            self._fill_until(self.shown[0] + 1 / float(self.rate), self.shown[1])
            self.shown = None

    def _fill_until(self, at: float, frame: torch.Tensor) -> None:
        """Grid frames whose time (n + 0.5) / fps comes before `at` show `frame`."""
        while (self.filled + 0.5) / self.rate < at:
            self.grid[self.filled] = frame
            self.filled += 1

    def window_start(self, k: int) -> float:
        return round(k * self.stride, 6)  # as timeline.window_starts

    def _indices(self, k: int) -> list[int]:
        return window_indices(self.window_start(k), self.length, self.rate, UNBOUNDED, self.spec.preprocess.num_frames)

    def ready(self) -> list[int]:
        """Windows whose frames are all on the grid and that are not scored yet."""
        found, k = [], self.next_window
        while self._indices(k)[-1] < self.filled:
            found.append(k)
            k += 1
        return found

    def take(self, newest_only: bool = False) -> tuple[list[int], list[torch.Tensor]]:
        """The ready windows (only the newest with `newest_only`, the others skipped) and their clips, now
        counted as scored: score them and give the scores to `add`. Frames no later window uses are dropped."""
        windows = self.ready()
        if newest_only and len(windows) > 1:
            self.skipped += len(windows) - 1
            windows = windows[-1:]
        clips = [torch.stack([self.grid[i] for i in self._indices(k)]) for k in windows]
        if windows:
            self.next_window = windows[-1] + 1
        self._forget()
        return windows, clips

    def add(self, windows: list[int], probs: torch.Tensor) -> None:
        """The scores (windows, classes) of windows `take` gave."""
        self.starts.extend(self.window_start(k) for k in windows)
        self.probs.extend(probs)
        self.added += len(windows)
        while self.starts and self.starts[0] < self.seconds - self.history_s:
            del self.starts[0], self.probs[0]

    @torch.inference_mode()
    def score_clips(self, clips: list[torch.Tensor]) -> torch.Tensor:
        """(windows, classes) scores of `take`'s clips, `batch_size` at a time."""
        return torch.cat([score_windows(self.model, self.spec, self.crop, clips[k:k + self.batch_size])
                          for k in range(0, len(clips), self.batch_size)])

    def score(self, newest_only: bool = False) -> int:
        """Score the ready windows now (take, score_clips, add); returns how many were scored."""
        windows, clips = self.take(newest_only)
        if windows:
            self.add(windows, self.score_clips(clips))
        return len(windows)

    def _forget(self) -> None:
        oldest = self._indices(self.next_window)[0]
        for n in [n for n in self.grid if n < oldest]:
            del self.grid[n]

    def timeline(self) -> Timeline | None:
        """The timeline of the windows scored so far (None before the first)."""
        if not self.probs:
            return None
        offset = self.starts[0]  # forgotten history: the timeline starts at the oldest window kept
        return Timeline(self.name, self.seconds - offset, float(self.length), self.stride,
                        [round(s - offset, 6) for s in self.starts], torch.stack(self.probs), self.labels,
                        float(self.rate), self.thresholds, self.spec.unknown)

    def segments(self) -> list[Segment]:
        """The timeline's segments so far, at its defaults (or this object's min_segment and switch_cost),
        in the source's seconds."""
        line = self.timeline()
        if line is None:
            return []
        shortest = line.default_min_segment() if self.min_segment is None else self.min_segment
        offset = self.starts[0]
        return [Segment(round(s.start + offset, 3), round(s.end + offset, 3), s.label, s.score)
                for s in line.segments(shortest, self.switch_cost)]

    def now(self) -> list[Segment]:
        """What the source shows now: the segment(s) that reach the newest scored frame (one label; for a
        multi-label model every class on there), best first."""
        segments = self.segments()
        if not segments:
            return []
        end = max(s.end for s in segments)
        return sorted((s for s in segments if math.isclose(s.end, end, abs_tol=1e-3)), key=lambda s: -s.score)
