"""What a video looks like over time, cheaply: a frame every STEP_S seconds of its span, each reduced to
perceptual hashes (imagehash's pHash: the signs of the lowest DCT frequencies of the frame at 32 x 32, so a
re-encoded or rescaled copy keeps most bits), its brightness spread, and how much it changed from the
sample before.

pHash alone is not robust to cropping (a 10% crop flips 11 bits of 64 in the mean, up to 22, where two
unrelated frames differ by 22-42). So each frame is also hashed cropped to CROP of its size at its centre
and four corners (CROPS): a copy cropped by up to 10% anywhere is then within 8 bits in the mean (14 at
most) of one of them, while unrelated frames stay 20 or more apart (measured on the demo's frames).

The audit compares videos by their hash sequences (engine/duplicates.py) and finds blank and frozen videos
by the other two. Samples are taken at fixed times from the span's start, the same grid for every video, so
that a copy started later lines up with its original at a whole number of steps (to within half a step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import torch
from PIL import Image

from .clips import decode_clip, readable
from .decoding import Decoder
from .manifest import VideoRecord

STEP_S = 0.1  # seconds between samples: a copy trimmed by any amount lines up within 0.05 s
MAX_SAMPLES = 64  # the first 6.4 s of a span: enough to recognise a copy, bounded for a long recording
CROP = 0.9
CROPS = ((0.5, 0.5), (0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))  # (y, x) of the crop: centre, corners


@dataclass
class Fingerprint:
    """One video's samples: `hashes` (n, 1 + len(CROPS)) uint64 pHash of the whole frame, then of its crops,
    `spread` (n,) luma standard deviation (0-255),
    `change` (n,) mean absolute luma change from the sample before (0 for the first)."""

    hashes: np.ndarray
    spread: np.ndarray
    change: np.ndarray

    @property
    def blank(self) -> np.ndarray:
        """Samples with (almost) nothing in them: one flat colour."""
        return self.spread < BLANK_SPREAD


BLANK_SPREAD = 2.0  # luma levels: a black, white or single-colour frame, even after compression noise


def sample_indices(record: VideoRecord) -> list[int]:
    """The file's frames shown every STEP_S seconds of the record's span, MAX_SAMPLES at most."""
    count = max(1, min(MAX_SAMPLES, int(record.duration / STEP_S) + (record.duration % STEP_S > 1e-9)))
    last = record.first_frame + max(record.frames - 1, 0)
    return [min(record.first_frame + round(k * STEP_S * record.fps), last) for k in range(count)]


def phash_bits(gray: np.ndarray) -> int:
    """imagehash's pHash of a (H, W) uint8 frame as one 64-bit integer."""
    bits = imagehash.phash(Image.fromarray(gray)).hash.flatten()
    return int(np.packbits(bits).view(">u8")[0])


def frame_hashes(gray: np.ndarray) -> list[int]:
    """The pHash of a (H, W) frame, then of its CROPS."""
    height, width = gray.shape
    h, w = max(1, round(height * CROP)), max(1, round(width * CROP))
    crops = [gray[round((height - h) * y):][:h, round((width - w) * x):][:, :w] for y, x in CROPS]
    return [phash_bits(gray)] + [phash_bits(c) for c in crops]


def luma(frames: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) uint8 RGB -> (T, H, W) uint8 luma (ITU-R BT.601)."""
    rgb = frames.float()
    y = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    return y.round().clamp(0, 255).to(torch.uint8).numpy()


def fingerprint_frames(frames: torch.Tensor) -> Fingerprint:
    """The fingerprint of sampled frames (T, C, H, W) uint8."""
    gray = luma(frames)
    small = torch.nn.functional.interpolate(torch.from_numpy(gray).float()[:, None], size=(32, 32), mode="area")
    small = small[:, 0].numpy()
    change = np.concatenate([[0.0], np.abs(np.diff(small, axis=0)).mean(axis=(1, 2))])
    return Fingerprint(np.array([frame_hashes(g) for g in gray], dtype=np.uint64).reshape(len(gray), 1 + len(CROPS)),
                       gray.reshape(len(gray), -1).std(axis=1), change)


def fingerprint(record: VideoRecord, root: str | Path, decode: Decoder) -> Fingerprint:
    """The fingerprint of one record (a DecodeError where it does not decode)."""
    return fingerprint_frames(decode_clip(decode, readable(root, record.path), sample_indices(record), record.fps))
