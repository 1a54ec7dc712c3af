"""How right a map over space and time is, where the evidence is known (bench/explain.py):

- the pointing game (Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016): a hit
  where the map's maximum lies inside the evidence's box (here with no tolerance);
- the share of the map's mass inside the box (the "energy-based pointing game" of Score-CAM, Wang et al.,
  CVPRW 2020), or inside the time interval of the evidence;
- the deletion curve (Petsiuk et al., RISE, BMVC 2018): the label's score as the input's cells are hidden,
  most important first, against hiding them in a random order; a smaller area under it is better.

Each video's map is (F, H, W) over F frames, with a box (top, left, bottom, right) or None per frame.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

Box = tuple[int, int, int, int]


def inside(boxes: Sequence[Box | None], shape: tuple[int, int, int]) -> np.ndarray:
    """(F, H, W) bool: the pixels inside each frame's box."""
    mask = np.zeros(shape, dtype=bool)
    for f, box in enumerate(boxes):
        if box is not None:
            top, left, bottom, right = box
            mask[f, top:bottom, left:right] = True
    return mask


def pointing_hit(maps: np.ndarray, boxes: Sequence[Box | None]) -> bool:
    """Whether the map's maximum (the first, in frame, row, column order) is inside its frame's box."""
    first = int(np.flatnonzero(maps == maps.max())[0])  # the first maximum, in frame, row, column order
    return bool(inside(boxes, maps.shape).flat[first])


def mass_inside(maps: np.ndarray, boxes: Sequence[Box | None]) -> float:
    """The share of the map's (non-negative) mass inside the boxes; 0 for an empty map."""
    total = float(maps.sum())
    return float(maps[inside(boxes, maps.shape)].sum()) / total if total > 0 else 0.0


def box_share(boxes: Sequence[Box | None], shape: tuple[int, int, int], seen: np.ndarray | None = None) -> float:
    """The pointing game's chance: the boxes' share of the area (of `seen`, an (H, W) mask of what the
    model sees, where given), averaged over the frames."""
    region = np.ones(shape[1:], dtype=bool) if seen is None else seen
    mask = inside(boxes, shape) & region
    return float(mask.sum(axis=(1, 2)).mean() / region.sum())


def time_share(times: np.ndarray, curve: np.ndarray, interval: tuple[float, float]) -> float:
    """The share of a temporal curve's mass at times inside [start, end)."""
    start, end = interval
    total = float(curve.sum())
    return float(curve[(times >= start) & (times < end)].sum()) / total if total > 0 else 0.0


def cell_ranking(maps: np.ndarray, cell: tuple[int, int, int], rng: np.random.Generator | None = None
                 ) -> np.ndarray:
    """Cells of (T, h, w) `maps` of size `cell` (frames, rows, columns), by the map's mean in each, highest
    first (ties by position), as flat indices of the (T/ct, h/ch, w/cw) grid; a random order with `rng`."""
    t, h, w = (n // c for n, c in zip(maps.shape, cell))
    means = maps[:t * cell[0], :h * cell[1], :w * cell[2]].reshape(t, cell[0], h, cell[1], w, cell[2]).mean(
        axis=(1, 3, 5)).ravel()
    if rng is not None:
        return rng.permutation(means.size)
    return np.argsort(-means, kind="stable")


def deletion_curve(score: Callable[[torch.Tensor], float], pixels: torch.Tensor, order: np.ndarray,
                   cell: tuple[int, int, int], steps: int = 10) -> np.ndarray:
    """The label's score of (C, T, h, w) normalised `pixels` as the cells of `order` are set to 0 (the mean
    colour), in steps + 1 stages from none to all: (steps + 1,) scores."""
    _, frames, height, width = pixels.shape
    grid = (frames // cell[0], height // cell[1], width // cell[2])
    out = []
    for stage in range(steps + 1):
        hidden = pixels.clone()
        for flat in order[: round(stage * len(order) / steps)]:
            t, r, c = np.unravel_index(int(flat), grid)
            hidden[:, t * cell[0]:(t + 1) * cell[0], r * cell[1]:(r + 1) * cell[1], c * cell[2]:(c + 1) * cell[2]] = 0
        out.append(score(hidden))
    return np.array(out)


def area(curve: np.ndarray) -> float:
    """The area under a curve sampled at equal steps over [0, 1] (the trapezoid rule)."""
    return float(np.trapezoid(curve, dx=1 / (len(curve) - 1)))
