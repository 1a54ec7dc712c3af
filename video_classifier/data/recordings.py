"""Synthetic untrimmed recordings (make demo-untrimmed): the demo's motions at random times, several seconds
each, between stretches of background, with their annotations written as a user's tools write them.

A recording alternates background and action. Background is of two kinds, both of no class: a still scene
with sensor noise and a slow drift of the lighting (a camera watching nothing happen), and a still scene
crossed by flat-colour squares (motion that is not a class, so "something moves" cannot stand for an
action). An action is a new scene panning its class's way. The annotations go to `annotations.csv`
(path, label, start, end in seconds, as the folder source reads them) and `label_studio.json` (the same
ranges as Label Studio exports a video project's TimelineLabels: 1-based frames, the last included).
"""

from __future__ import annotations

import csv
import json
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from ..core.config import SyntheticConfig
from .manifest import first_frame_at
from .synthetic import VideoSpec, _write_mpeg4, render

BACKGROUND_KINDS = ("still", "crossing")
NOISE = 4.0  # sensor noise, in 8-bit levels (standard deviation)
DRIFT = 0.15  # the lighting's drift over a background stretch, as a fraction of brightness


@dataclass(frozen=True)
class RecordingPlan:
    classes: tuple[str, ...] = ("PanDown", "PanLeft", "PanRight", "PanUp")
    recordings: tuple[int, int, int] = (16, 3, 5)  # train, val, test
    seconds: tuple[float, float] = (60.0, 120.0)  # each recording's length, drawn from this range
    action: tuple[float, float] = (3.0, 6.0)  # each action's length
    gap: tuple[float, float] = (2.0, 6.0)  # each background stretch's length


def _background(kind: str, seconds: float, config: SyntheticConfig, seed: int) -> np.ndarray:
    """A still scene (its texture drawn by `seed`): sensor noise and a lighting drift, or squares crossing it."""
    still = replace(config, seconds=seconds, seconds_max=None, speed=0.0, seed=seed,
                    distractors=2 if kind == "crossing" else 0)
    frames = render(VideoSpec("background", "PanUp", 1, 1), still).astype(np.float32)
    rng = np.random.default_rng(seed)
    drift = np.linspace(1.0, 1.0 + rng.uniform(-DRIFT, DRIFT), len(frames), dtype=np.float32)
    frames = frames * drift[:, None, None, None] + rng.normal(0, NOISE, frames.shape).astype(np.float32)
    return frames.clip(0, 255).round().astype(np.uint8)


def write_recording(path: Path, config: SyntheticConfig, plan: RecordingPlan, seed: int
                    ) -> list[tuple[float, float, str]]:
    """One recording, written part by part; its actions as (start, end, class) in seconds."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(*plan.seconds)
    actions: list[tuple[float, float, str]] = []

    def parts() -> Iterator[np.ndarray]:
        at, k = 0, 0  # frames written, parts made
        while at / config.fps < length:
            gap = rng.uniform(*plan.gap)
            yield (frames := _background(BACKGROUND_KINDS[int(rng.integers(2))], gap, config, seed * 1000 + k))
            at, k = at + len(frames), k + 1
            if at / config.fps + plan.action[0] + plan.gap[0] > length:
                break
            label = plan.classes[int(rng.integers(len(plan.classes)))]
            part = replace(config, seconds=rng.uniform(*plan.action), seconds_max=None, seed=seed * 1000 + k)
            frames = render(VideoSpec("recording", label, 1 + k % 99, 1 + seed % 99), part)
            actions.append((at / config.fps, (at + len(frames)) / config.fps, label))
            yield frames
            at, k = at + len(frames), k + 1

    _write_mpeg4(parts(), path, config.width, config.height, config.fps, config.bits_per_pixel)
    return actions


def write_recordings(out: Path, config: SyntheticConfig, plan: RecordingPlan = RecordingPlan()) -> Path:
    """`plan`'s recordings in `out`, with annotations.csv (its split column keeps them apart) and
    label_studio.json; returns the CSV. A finished folder (its CSV present) is left as it is."""
    listing = out / "annotations.csv"
    if listing.is_file():
        print(f"{out} already holds the recordings ({listing.name} present): nothing to do")
        return listing
    out.mkdir(parents=True, exist_ok=True)
    rows, tasks = [], []
    names = [(split, i) for split, n in zip(("train", "val", "test"), plan.recordings) for i in range(n)]
    for task_id, (split, i) in enumerate(tqdm(names, desc="writing recordings", unit="recording"), start=1):
        name = f"{split}_{i:02d}.avi"
        seed = zlib.crc32(f"{config.seed}/{name}".encode())
        actions = write_recording(out / name, config, plan, seed)
        rows += [(name, label, f"{start:.3f}", f"{end:.3f}", split) for start, end, label in actions]
        tasks.append(label_studio_task(task_id, f"/data/upload/1/{seed & 0xffffffff:08x}-{name}", actions,
                                       config.fps))
    (out / "label_studio.json").write_text(json.dumps(tasks, indent=1) + "\n")
    partial = listing.with_suffix(".partial")
    with open(partial, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "start", "end", "split"])
        writer.writerows(rows)
    partial.rename(listing)  # last: a folder with the CSV is complete
    print(f"wrote {len(names)} recordings and {len(rows)} annotated actions into {out}")
    return listing


def label_studio_task(task_id: int, video: str, actions: list[tuple[float, float, str]], fps: float) -> dict:
    """A task as Label Studio's JSON export gives a video project's TimelineLabels: each range's first and last
    frame, 1-based (frame k is shown from (k - 1) / fps s)."""
    result = [{"id": f"r{n}", "type": "timelinelabels", "from_name": "videoLabels", "to_name": "video",
               "origin": "manual",
               "value": {"ranges": [{"start": first_frame_at(start, fps) + 1, "end": first_frame_at(end, fps)}],
                         "timelinelabels": [label]}}
              for n, (start, end, label) in enumerate(actions)]
    return {"id": task_id, "data": {"video": video},
            "annotations": [{"id": task_id, "completed_by": 1, "was_cancelled": False, "result": result}]}
