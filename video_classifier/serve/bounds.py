"""What one request to the page may cost, so that no visitor can hold the page for the others.

MAX_UPLOAD_MB and MAX_UPLOAD_MINUTES bound an upload (a long low-bitrate video fits in few megabytes, so
its duration is bounded too, read from the container before anything is decoded); ANSWER_MAX_S bounds the
time one answer may take (its labels and its timeline), checked before every decode; a visitor's session
asks one video at a time (OnePerVisitor). docs/serving.md gives the reasons for each number.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..data.decoding import Decoder, Decoding

MAX_UPLOAD_MB = 200  # a 10-minute 1080p phone video is about 130 MB; the server refuses larger uploads
# 10 minutes: a phone's long take, and about what MAX_UPLOAD_MB holds at 1080p; the demo model's answer and
# timeline of a 10-minute video take 3.6 s (torchcodec) to 8.7 s (PyAV) on 2 cores (docs/serving.md)
MAX_UPLOAD_MINUTES = 10.0
# an answer stops after this long and says so: over 10x the demo's longest upload; at VideoMAE-B's shape
# (about 0.5 s a window in bf16 on 2 AMX cores) the timeline of about 5 minutes of video
ANSWER_MAX_S = 120.0


class OverTime(UserError):
    """An answer that passed its time limit: one line, and the page goes on to the next request."""


@dataclass(frozen=True)
class Limits:
    """The page's bounds on one upload and one answer."""

    upload_mb: float = MAX_UPLOAD_MB
    upload_minutes: float = MAX_UPLOAD_MINUTES
    answer_s: float = ANSWER_MAX_S

    def check_size(self, name: str, megabytes: float) -> None:
        """Refuse at once, in one line naming the limit and the file's size, an upload over the size bound."""
        if megabytes > self.upload_mb:
            raise UserError(f"{name} is {megabytes:.0f} MB, over the page's {self.upload_mb:g} MB: cut it shorter, "
                            "or run infer.py on it")

    def check_duration(self, name: str, seconds: float) -> None:
        """Refuse at once, in one line naming both durations, a video longer than the page takes."""
        if seconds > self.upload_minutes * 60:
            raise UserError(f"{name} is {minutes(seconds)} long, over the page's {minutes(self.upload_minutes * 60)}:"
                            " cut it shorter, or run infer.py --timeline on it")

    def deadline(self) -> Deadline:
        return Deadline(self.answer_s)

    def describe(self) -> str:
        return (f"uploads up to {self.upload_mb:g} MB and {minutes(self.upload_minutes * 60)}, "
                f"each answer stopped after {self.answer_s:.0f} s")


def minutes(seconds: float) -> str:
    """"12 min 5 s" (or "40.0 s" under a minute)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole, rest = divmod(round(seconds), 60)
    return f"{whole} min {rest} s" if rest else f"{whole} min"


@dataclass
class Deadline:
    """The time an answer may take, from when it was made; `check` raises OverTime once it has passed."""

    limit_s: float
    began: float = 0.0

    def __post_init__(self) -> None:
        self.began = self.began or time.monotonic()

    def check(self) -> None:
        if time.monotonic() - self.began > self.limit_s:
            raise OverTime(f"stopped after {self.limit_s:.0f} s, the page's limit per answer; run infer.py on "
                           "this video for its whole answer")

    def decoding(self, decoding: Decoding) -> Decoding:
        """`decoding` whose every decode (and every read of a reader) first checks the deadline."""
        return BoundedDecoding(decoding.name, self.bound(decoding.decode), decoding.reason, decoding, self)

    def bound(self, decode: Decoder) -> Decoder:
        def checked(*args: Any, **kwargs: Any) -> Any:
            self.check()
            return decode(*args, **kwargs)

        return checked


@dataclass(frozen=True)
class BoundedDecoding(Decoding):
    """A Decoding under a Deadline: its readers check it too."""

    inner: Decoding | None = None
    deadline: Deadline | None = None

    def reader(self, path: Path, fps: float | None = None) -> Decoder:
        return self.deadline.bound(self.inner.reader(path, fps))


class OnePerVisitor:
    """The visitors (gradio sessions) with an answer running: a second request of one is refused in one line."""

    def __init__(self) -> None:
        self.busy: set[str] = set()
        self.lock = threading.Lock()

    @contextmanager
    def turn(self, visitor: str | None) -> Iterator[None]:
        key = visitor or ""
        with self.lock:
            if visitor is not None and key in self.busy:
                raise UserError("one video at a time: the answer to your last video is still being made; "
                                "wait for it, then send the next")
            self.busy.add(key)
        try:
            yield
        finally:
            with self.lock:
                self.busy.discard(key)
