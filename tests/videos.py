"""Videos the tests make themselves with PyAV: the containers and codecs users bring, and broken files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

# name -> (container format, codec, file suffix)
FORMATS = {
    "h264": ("mp4", "libx264", ".mp4"),
    "vp9": ("webm", "libvpx-vp9", ".webm"),
    "hevc": ("matroska", "libx265", ".mkv"),
    "mjpeg": ("avi", "mjpeg", ".avi"),
    "mpeg4": ("avi", "mpeg4", ".avi"),
}


def frames(n: int, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8: a random texture panning right, so frames differ."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height, width + n * 2, 3), dtype=np.uint8)
    return np.stack([texture[:, 2 * i: 2 * i + width] for i in range(n)])


def write(path: Path, kind: str = "mpeg4", n: int = 30, fps: int = 25, width: int = 64, height: int = 48,
          seed: int = 0) -> Path:
    """Encode `n` frames as `kind` (FORMATS); `path`'s suffix is replaced by the format's."""
    container_format, codec, suffix = FORMATS[kind]
    path = path.with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if kind == "mjpeg" else "yuv420p"
        if kind == "h264":
            stream.options = {"bf": "2", "g": "12"}  # B-frames, as cameras and encoders write them
        if kind == "hevc":
            stream.options = {"x265-params": "log-level=none"}
        for array in frames(n, width, height, seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: Path, keep: float = 1 / 3) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def garble(path: Path) -> Path:
    """Overwrite the middle third with noise: the header stays, frames there do not decode."""
    raw = bytearray(path.read_bytes())
    third = len(raw) // 3
    raw[third: 2 * third] = np.random.default_rng(0).integers(0, 256, third, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(raw))
    return path
