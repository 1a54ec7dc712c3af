"""Exact and near duplicates among videos, by their hash sequences (data/fingerprints.py), and the clusters
they make.

Two videos match where, at some shift of one against the other by up to MAX_SHIFT_S (a copy trimmed at
the start, or started early), their hashes over at least MIN_OVERLAP samples differ by at most
MAX_DISTANCE bits in the mean (of 64; two unrelated frames differ by about 32), comparing one video's whole
frames with the other's whole frames or with one of its crops (data/fingerprints.py). Blank samples are left
out: every black frame hashes alike. A cluster is a connected set of matches; where it spans more than
one split it is a leak (a test score measured on copies of training videos).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..data.fingerprints import STEP_S, Fingerprint

MAX_DISTANCE = 13.0  # mean bits of 64 (bench/audit.py: copies re-encoded, rescaled, cropped 10%, trimmed)
MAX_SHIFT_S = 0.6  # a copy started up to 0.5 s late, or early
MIN_OVERLAP = 5  # samples (0.5 s)


@dataclass(frozen=True)
class Match:
    """Videos `a` < `b` (indices) match at `distance` mean bits with b shifted by `shift_s` seconds."""

    a: int
    b: int
    distance: float
    shift_s: float


def _padded(prints: list[Fingerprint | None]) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, V) hashes (whole frame, crops) and (N, T) usable-sample mask (present, not blank)."""
    length = max([len(p.hashes) for p in prints if p is not None] or [1])
    kinds = next((p.hashes.shape[1] for p in prints if p is not None), 1)
    hashes = np.zeros((len(prints), length, kinds), dtype=np.uint64)
    usable = np.zeros((len(prints), length), dtype=bool)
    for i, p in enumerate(prints):
        if p is not None:
            hashes[i, :len(p.hashes)] = p.hashes
            usable[i, :len(p.hashes)] = ~p.blank
    return hashes, usable


def _mean_distance(a: np.ndarray, b: np.ndarray, both: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    """Mean bits between hashes a (R, T) and b (N, T) over the samples `both` (R, N, T) marks."""
    bits = np.bitwise_count(a[:, None, :] ^ b[None, :, :]).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(overlap >= MIN_OVERLAP, (bits * both).sum(axis=2) / np.maximum(overlap, 1), np.inf)


def _shifted(hashes: np.ndarray, usable: np.ndarray, rows: slice, shift: int) -> np.ndarray:
    """The distance of videos `rows` (sample t) to all (sample t + shift): the smallest over one whole frame
    against the other's same frame or one of its crops (a copy is a crop of its original, or the reverse)."""
    length = hashes.shape[1]
    lo, hi = max(0, -shift), min(length, length - shift)
    if hi <= lo:
        return np.full((rows.stop - rows.start, len(hashes)), np.inf)
    a, b = hashes[rows, lo:hi], hashes[:, lo + shift:hi + shift]
    both = usable[rows, lo:hi][:, None, :] & usable[:, lo + shift:hi + shift][None, :, :]
    overlap = both.sum(axis=2)
    best = _mean_distance(a[..., 0], b[..., 0], both, overlap)
    for crop in range(1, hashes.shape[2]):
        best = np.minimum(best, _mean_distance(a[..., 0], b[..., crop], both, overlap))
        best = np.minimum(best, _mean_distance(a[..., crop], b[..., 0], both, overlap))
    return best


def find_matches(prints: list[Fingerprint | None], block: int = 32) -> list[Match]:
    """Every pair of videos that match (see the module), with the shift at which they match best."""
    hashes, usable = _padded(prints)
    n, steps = len(prints), round(MAX_SHIFT_S / STEP_S)
    found: list[Match] = []
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        best = np.full((rows.stop - start, n), np.inf)
        best_shift = np.zeros((rows.stop - start, n), dtype=int)
        for shift in range(-steps, steps + 1):
            mean = _shifted(hashes, usable, rows, shift)
            better = mean < best
            best, best_shift = np.where(better, mean, best), np.where(better, shift, best_shift)
        for i, j in zip(*np.nonzero(best <= MAX_DISTANCE)):
            a = start + int(i)
            if a < j:
                found.append(Match(a, int(j), float(best[i, j]), round(float(best_shift[i, j] * STEP_S), 3)))
    return found


def clusters(matches: list[Match], n: int) -> list[list[int]]:
    """The connected sets of two or more matching videos, largest first."""
    if not matches:
        return []
    graph = coo_matrix((np.ones(len(matches)), ([m.a for m in matches], [m.b for m in matches])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for index, component in enumerate(label):
        groups.setdefault(int(component), []).append(index)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
