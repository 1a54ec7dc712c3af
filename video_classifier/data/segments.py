"""Annotated ranges of one recording, checked against its length, and the background drawn between them.

Pure arithmetic on (start, end, label) in seconds: the folder source (sources/folder.py) asks it for each
recording once the recording's length is known, and makes the records.

Rules, each refusal one line naming the row:
- `start >= end`, or a start at or past the recording's end: refused;
- an end past the recording's end by at most `CLAMP` seconds (an annotator's last frame, a rounding of
  milliseconds) is clamped to it and counted; further is refused;
- a segment shorter than one clip is kept: its clip's frames are spread over it (frames repeat), as for
  a short file;
- on a single-label set, two ranges of different labels that overlap are refused (a clip in the overlap
  would teach both); a multi-label set takes both.

Background: the stretches no annotation covers, each range widened by `margin` on both sides, give pieces
of `length` seconds (the median annotated segment's, at least `min_length`); per recording, as many as the
median number of segments its classes have there (at least one), spread evenly over the pieces. A
recording whose annotations leave no stretch of `min_length` gets none.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from ..core.errors import UserError

CLAMP = 0.5  # seconds an end may pass the recording's end and be clamped to it


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    label: str  # multi-label: the labels joined ("" for none)
    where: str = ""  # the row that gave it


def bounded(spans: list[Span], duration: float, path: str) -> tuple[list[Span], int]:
    """`spans` of a recording of `duration` seconds, checked; ends up to CLAMP past its end clamped. Returns
    them and how many were clamped."""
    kept, clamped = [], 0
    for span in spans:
        if not span.start < span.end:
            raise UserError(f"{span.where}: start {span.start:g} s is not before end {span.end:g} s: fix the row")
        if span.start < 0 or span.start >= duration:
            raise UserError(f"{span.where}: start {span.start:g} s is outside {path} ({duration:.2f} s long): "
                            "fix the row, or check that it names the right video")
        if span.end > duration + CLAMP:
            raise UserError(f"{span.where}: end {span.end:g} s is past the end of {path} ({duration:.2f} s long, "
                            f"more than {CLAMP} s): fix the row, or check that it names the right video")
        if span.end > duration:
            span, clamped = Span(span.start, duration, span.label, span.where), clamped + 1
        kept.append(span)
    return kept, clamped


def check_overlaps(spans: list[Span]) -> None:
    """Refuse two ranges of different labels that overlap (single-label sets)."""
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    for i, span in enumerate(ordered):
        for other in ordered[i + 1:]:
            if other.start >= span.end:
                break
            if other.label != span.label:
                raise UserError(f"{span.where} ({span.label}, {span.start:g}-{span.end:g} s) overlaps {other.where} "
                                f"({other.label}, {other.start:g}-{other.end:g} s) on a single-label set: fix one "
                                "of them, or give the list a labels column (several labels per moment)")


def uncovered(spans: list[Span], duration: float, margin: float) -> list[tuple[float, float]]:
    """The stretches of [0, duration] at least `margin` away from every span."""
    gaps, at = [], 0.0
    for start, end in sorted((s.start - margin, s.end + margin) for s in spans):
        if start > at:
            gaps.append((at, min(start, duration)))
        at = max(at, end)
    if at < duration:
        gaps.append((at, duration))
    return [(a, b) for a, b in gaps if b > a]


def background(spans: list[Span], duration: float, label: str, min_length: float, margin: float,
               where: str) -> list[Span]:
    """The background segments of one recording (see the module's rule)."""
    if not spans:
        return []
    length = max(min_length, statistics.median(s.end - s.start for s in spans))
    pieces = []
    for start, end in uncovered(spans, duration, margin):
        if end - start < min_length:
            continue
        size = min(length, end - start)
        count = int((end - start) // size)
        pieces += [(start + k * size, start + (k + 1) * size) for k in range(count)]
    wanted = max(1, round(statistics.median(Counter(s.label for s in spans).values())))
    if not pieces:
        return []
    if len(pieces) > wanted:
        step = (len(pieces) - 1) / max(wanted - 1, 1)
        pieces = [pieces[round(k * step)] for k in range(wanted)] if wanted > 1 else [pieces[len(pieces) // 2]]
    return [Span(a, b, label, f"{where} background {a:.2f}-{b:.2f} s") for a, b in pieces]
