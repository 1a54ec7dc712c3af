"""A synthetic video dataset in UCF101 layout whose classes differ only by motion.

Every video shows a random texture (patches of flat colour at several scales)
seen through a camera panning in one of eight directions, at a random speed.
Appearance is drawn anew for each video, so one frame says nothing about the
class: a model must use time to score above chance.

Zooms were tried as classes too: at the demo's size (64 px, 4 x 4 patches) a
tiny VideoMAE confused zoom in with zoom out for about 30% of clips after 1500
steps, while pans were near 100%, and magnified views lose texture.

Multi-label (`synthetic.multi_label`): the camera pans one of four ways or stays
still, and a checkerboard square crosses the view one of four ways at its own
speed or stays still, the two drawn independently: a video has 0, 1 or 2 of the
8 labels (PanUp ... PanLeft, ObjectUp ... ObjectLeft), each on a fifth of the
videos. The square is in every video (a pan alone too), still or not, its colour
drawn anew per video, so one frame tells nothing either.

Files are `<split>/<Class>/v_<Class>_gNN_cMM.avi` (mpeg4 in AVI, like UCF101;
multi-label: a folder per combination of labels, e.g. `PanUp+ObjectLeft`, `Still`),
groups never cross splits, and the output depends only on the config and seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np
import torch
import torch.nn.functional as F

from ..core.config import SyntheticConfig
from ..core.task import join_labels

_H = 0.5**0.5
# class name -> the camera's direction of motion (x right, y down), unit length
MOTIONS: dict[str, tuple[float, float]] = {
    "PanUp": (0, -1),
    "PanUpRight": (_H, -_H),
    "PanRight": (1, 0),
    "PanDownRight": (_H, _H),
    "PanDown": (0, 1),
    "PanDownLeft": (-_H, _H),
    "PanLeft": (-1, 0),
    "PanUpLeft": (-_H, -_H),
}
CLASSES = sorted(MOTIONS)

# multi-label: the camera's and the square's four directions, each label on a fifth of the videos
PANS = {"PanUp": (0, -1), "PanRight": (1, 0), "PanDown": (0, 1), "PanLeft": (-1, 0)}
OBJECTS = {"ObjectUp": (0, -1), "ObjectRight": (1, 0), "ObjectDown": (0, 1), "ObjectLeft": (-1, 0)}
MULTI_LABEL_CLASSES = sorted([*PANS, *OBJECTS])
STILL = "Still"  # the folder of videos with no label: camera and square both still
# every combination once per group: 5 camera motions (4 pans, still) x 5 square motions = 25 folders
COMBINATIONS = ["+".join(p for p in (pan, thing) if p) or STILL
                for pan in (None, *PANS) for thing in (None, *OBJECTS)]

# Each video pans at config.speed frame widths per second times a random factor
# in this range.
SPEED_JITTER = (0.7, 1.3)
# Texture detail, as colour cells per frame width for three octaves, times a
# random factor per video.
OCTAVES = (4, 12, 32)
OCTAVE_WEIGHTS = (1.0, 0.8, 0.6)
DETAIL = (0.5, 2.0)
LEVELS = 4  # colour levels per channel after posterising


@dataclass(frozen=True)
class VideoSpec:
    split: str
    label: str
    group: int
    clip: int

    @property
    def relpath(self) -> str:
        return f"{self.split}/{self.label}/v_{self.label}_g{self.group:02d}_c{self.clip:02d}.avi"

    @property
    def labels(self) -> str:
        """The video's label string: its class, or (multi-label) its labels joined as the manifest keeps them."""
        if self.label in MOTIONS:
            return self.label
        return join_labels([] if self.label == STILL else self.label.split("+"))

    def motions(self) -> tuple[tuple[float, float], tuple[float, float] | None]:
        """(the camera's direction, the square's direction or None for no square); (0, 0): still."""
        if self.label in MOTIONS:
            return MOTIONS[self.label], None
        parts = [] if self.label == STILL else self.label.split("+")
        pan = next((PANS[p] for p in parts if p in PANS), (0, 0))
        return pan, next((OBJECTS[p] for p in parts if p in OBJECTS), (0, 0))


def plan(config: SyntheticConfig) -> list[VideoSpec]:
    """All videos to make, split by group: train groups first, then val, then test."""
    counts = {"train": config.train_groups, "val": config.val_groups, "test": config.test_groups}
    labels = COMBINATIONS if config.multi_label else CLASSES
    # the long tail (config.imbalance): class k keeps the first train_groups x imbalance^(-k / (C - 1))
    kept = {label: max(1, round(config.train_groups * config.imbalance ** (-k / max(len(labels) - 1, 1))))
            for k, label in enumerate(labels)}
    specs, first_group = [], 1
    for split, n_groups in counts.items():
        for group in range(first_group, first_group + n_groups):
            for label in labels:
                if split == "train" and group - first_group >= kept[label]:
                    continue
                for clip in range(1, config.clips_per_group + 1):
                    specs.append(VideoSpec(split, label, group, clip))
        first_group += n_groups
    return specs


def _texture(rng: np.random.Generator, height: int, width: int, cells_across: list[float]) -> torch.Tensor:
    """A random colour texture (3, H, W) in [0, 1], a sum of smooth noise octaves."""
    canvas = torch.zeros(1, 3, height, width)
    for octave, cells in enumerate(cells_across):
        shape = (1, 3, max(2, round(cells * height / width)), max(2, round(cells)))
        grid = torch.from_numpy(rng.random(shape, dtype=np.float32))
        canvas += OCTAVE_WEIGHTS[octave] * F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)
    canvas = canvas[0]
    low, high = canvas.amin(dim=(1, 2), keepdim=True), canvas.amax(dim=(1, 2), keepdim=True)
    canvas = (canvas - low) / (high - low + 1e-6)
    # posterise to LEVELS values per channel: patches of flat colour with sharp
    # edges, whose motion is visible at any speed
    return (canvas * LEVELS).floor().clamp(max=LEVELS - 1) / (LEVELS - 1)


def render(spec: VideoSpec, config: SyntheticConfig) -> np.ndarray:
    """The frames of one video, (T, H, W, 3) uint8. Deterministic for (spec, seed)."""
    return render_with_window(spec, config)[0]


def motion_window(spec: VideoSpec, config: SyntheticConfig) -> tuple[float, float]:
    """[start, end) in seconds of the part of the video where the camera pans."""
    return render_with_window(spec, config)[1]


def render_with_window(spec: VideoSpec, config: SyntheticConfig) -> tuple[np.ndarray, tuple[float, float]]:
    """The frames, and the seconds during which the camera moves."""
    frames, window, _ = render_with_truth(spec, config)
    return frames, window


Box = tuple[int, int, int, int]  # (top, left, bottom, right) in pixels, bottom and right exclusive


def render_with_truth(spec: VideoSpec, config: SyntheticConfig
                      ) -> tuple[np.ndarray, tuple[float, float], list[Box | None]]:
    """The frames, the seconds during which the camera moves, and the square's box in each frame (None
    where it is out of view, or where the video has no square): where the evidence is, for explanations."""
    seed = zlib.crc32(f"{config.seed}/{spec.relpath}".encode())
    rng = np.random.default_rng(seed)
    seconds = config.seconds if config.seconds_max is None else rng.uniform(config.seconds, config.seconds_max)
    n_frames = max(1, round(seconds * config.fps))
    t = torch.arange(n_frames, dtype=torch.float32) / config.fps  # seconds
    w, h = config.width, config.height
    (dx, dy), square = spec.motions()
    if config.multi_label and square is None:  # a pan alone (PanUp ...): its square is still, not absent
        square = (0, 0)
    detail = rng.uniform(*DETAIL)

    # The view: centre (cx, cy) in pixels of a canvas of (cw, ch) pixels that
    # holds the whole path, with 4 px to spare on each side.
    speed = config.speed * rng.uniform(*SPEED_JITTER) * w  # px per second while moving
    moving = config.motion_fraction * n_frames / config.fps  # seconds of motion
    total = speed * min(moving, t[-1].item())  # px travelled in all
    cw = w + abs(dx) * total + 8
    ch = h + abs(dy) * total + 8
    canvas = _texture(rng, round(ch), round(cw), [c * detail * cw / w for c in OCTAVES])
    start = rng.uniform(0, t[-1].item() - moving) if moving < t[-1].item() else 0.0
    travel = speed * (t - start).clamp(0, moving)  # px from the start: still, then panning, then still
    cx = (cw - 4 - w / 2 if dx < 0 else 4 + w / 2) + dx * travel
    cy = (ch - 4 - h / 2 if dy < 0 else 4 + h / 2) + dy * travel
    if config.shake:
        jitter = torch.from_numpy(rng.normal(0, config.shake, (2, n_frames)).astype(np.float32))
        cx, cy = cx + jitter[0], cy + jitter[1]

    # affine_grid maps output coordinates in [-1, 1] to input coordinates in [-1, 1]
    theta = torch.zeros(n_frames, 2, 3)
    theta[:, 0, 0] = w / cw
    theta[:, 0, 2] = cx / (cw / 2) - 1
    theta[:, 1, 1] = h / ch
    theta[:, 1, 2] = cy / (ch / 2) - 1
    grid = F.affine_grid(theta, [n_frames, 3, h, w], align_corners=False)
    frames = F.grid_sample(canvas.expand(n_frames, -1, -1, -1), grid, mode="bilinear", align_corners=False)
    boxes: list[Box | None] = [None] * n_frames
    if square is not None:  # multi-label: the square's own motion, independent of the camera's
        frames, boxes = _add_square(frames, rng, square, t)
    if config.distractors:
        frames = _add_distractors(frames, rng, config.distractors, t, speed)
    if config.flicker:
        hertz, phase = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
        frames = frames * (1 + config.flicker * torch.sin(2 * np.pi * hertz * t + phase)).view(-1, 1, 1, 1)
    # (T, C, H, W) float -> (T, H, W, C) uint8
    pixels = (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return pixels, (float(start), float(start + moving)), boxes


def _add_distractors(frames: torch.Tensor, rng: np.random.Generator, count: int, t: torch.Tensor,
                     speed: float) -> torch.Tensor:
    """Squares of flat colour, each moving its own way across the view (wrapping at the edges) for the
    whole video: motion that is not the class's, in clips where the camera is still too."""
    _, _, h, w = frames.shape
    frames = frames.clone()
    for _ in range(count):
        side = int(rng.integers(h // 8, h // 4 + 1))
        colour = torch.from_numpy(rng.random(3, dtype=np.float32)).view(3, 1, 1)
        angle = rng.uniform(0, 2 * np.pi)
        velocity = speed * rng.uniform(0.5, 1.5)
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        for i, seconds in enumerate(t.tolist()):
            x = int((x0 + velocity * np.cos(angle) * seconds) % (w + side)) - side
            y = int((y0 + velocity * np.sin(angle) * seconds) % (h + side)) - side
            frames[i, :, max(y, 0): y + side, max(x, 0): x + side] = colour
    return frames


def _add_square(frames: torch.Tensor, rng: np.random.Generator, direction: tuple[float, float], t: torch.Tensor
                ) -> tuple[torch.Tensor, list[Box | None]]:
    """A checkerboard square (a random colour and its complement, 4 x 4 cells), half to two thirds of the
    view's height, crossing the view `direction` once at its own speed, or still where direction is (0, 0).

    Why so: a flat square of the background's colours, a third of the view, moving at the pan's speed and
    wrapping at the edges, was learnt by the tiny model only to AP 0.4-0.5 in the demo's 3780 steps. The
    checkerboard shows its motion inside it, not only at two edges; never wrapping, its path is one
    straight line. At least half of it stays in view: its top-left corner keeps within [-side/2,
    size - side/2] on each axis, and a still square is drawn from the same range, so where it is in one
    frame tells little. Its speed, 0.6-0.9 of that range per video length (about 40-60 px/s across at
    128 px), is its own, unlike the pan's."""
    _, _, h, w = frames.shape
    frames = frames.clone()
    side = int(rng.integers(h // 2, 2 * h // 3 + 1))
    colour = torch.from_numpy(rng.random(3, dtype=np.float32)).view(3, 1, 1)
    cell = max(side // 4, 2)
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    board = torch.where((rows // cell + cols // cell) % 2 == 0, colour, 1 - colour)  # (3, side, side)
    duration = max(t[-1].item(), 1e-6)  # seconds from the first frame to the last
    low = (-side / 2, -side / 2)
    high = (w - side / 2, h - side / 2)
    axis = 0 if direction[0] else 1
    velocity = rng.uniform(0.6, 0.9) * (high[axis] - low[axis]) / duration  # px/s
    travel = velocity * duration
    corner = [rng.uniform(low[k], high[k]) for k in (0, 1)]  # top-left (x, y) at t = 0
    for k in (0, 1):
        if direction[k] > 0:
            corner[k] = rng.uniform(low[k], high[k] - travel)
        elif direction[k] < 0:
            corner[k] = rng.uniform(low[k] + travel, high[k])
    boxes: list[Box | None] = []
    for i, seconds in enumerate(t.tolist()):
        x = round(corner[0] + velocity * direction[0] * seconds)
        y = round(corner[1] + velocity * direction[1] * seconds)
        top, left, bottom, right = max(y, 0), max(x, 0), min(y + side, h), min(x + side, w)
        if bottom > top and right > left:
            frames[i, :, top:bottom, left:right] = board[:, top - y: bottom - y, left - x: right - x]
        boxes.append((top, left, bottom, right) if bottom > top and right > left else None)
    return frames, boxes


def write_video(frames: np.ndarray, path: Path, fps: int, bits_per_pixel: float) -> None:
    """Write (T, H, W, 3) uint8 frames as mpeg4 in AVI, the codec and container of UCF101."""
    height, width = frames.shape[1:3]
    _write_mpeg4([frames], path, width, height, fps, bits_per_pixel)


def _write_mpeg4(chunks: Iterable[np.ndarray], path: Path, width: int, height: int, fps: int,
                 bits_per_pixel: float) -> None:
    """Write chunks of (T, H, W, 3) uint8 frames, one after the other, as one mpeg4 AVI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = round(width * height * fps * bits_per_pixel)
        stream.codec_context.thread_count = 1
        for frames in chunks:
            for array in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_long_video(path: Path, parts: list[tuple[str, float]], config: SyntheticConfig,
                     seed: int = 0) -> list[tuple[float, float, str]]:
    """One video made of `parts` (class, seconds) in turn, each a new scene panning its class's way, written
    part by part (memory: one part). Returns the truth: (start, end, class) in seconds."""
    truth: list[tuple[float, float, str]] = []

    def scenes() -> Iterator[np.ndarray]:
        start = 0.0
        for k, (label, seconds) in enumerate(parts):
            part = replace(config, seconds=seconds, seconds_max=None, seed=seed)
            frames = render(VideoSpec("long", label, 1 + k % 99, 1 + k // 99), part)
            truth.append((round(start, 6), round(start + len(frames) / config.fps, 6), label))
            start += len(frames) / config.fps
            yield frames

    _write_mpeg4(scenes(), path, config.width, config.height, config.fps, config.bits_per_pixel)
    return truth
