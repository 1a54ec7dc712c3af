"""Videos the tests make themselves with PyAV: the containers and codecs users bring, and broken files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, Colorspace, ColorTrc

# name -> (container format, codec, file suffix)
FORMATS = {
    "h264": ("mp4", "libx264", ".mp4"),
    "vp9": ("webm", "libvpx-vp9", ".webm"),
    "hevc": ("matroska", "libx265", ".mkv"),
    "mjpeg": ("avi", "mjpeg", ".avi"),
    "mpeg4": ("avi", "mpeg4", ".avi"),
    "mov": ("mov", "libx264", ".mov"),  # H.264 in QuickTime, as phones write it
}


def frames(n: int, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8: a texture of random 8 px blocks panning right by 2 px a frame, so every frame
    differs from its neighbours and survives lossy codecs."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, (width + n * 2) // 8 + 1, 3), dtype=np.uint8)
    texture = blocks.repeat(8, axis=0).repeat(8, axis=1)[:height]
    return np.stack([texture[:, 2 * i: 2 * i + width] for i in range(n)])


def write(path: Path, kind: str = "mpeg4", n: int = 30, fps: int | Fraction = 25, width: int = 64,
          height: int = 48, seed: int = 0, rotation: int = 0, variable_rate: bool = False,
          audio: bool = False, pix_fmt: str | None = None, bt2020: bool = False) -> Path:
    """Encode `n` frames as `kind` (FORMATS); `path`'s suffix is replaced by the format's. `rotation`:
    a display matrix turning the picture (as phones record portrait); `variable_rate`: frames 20 and
    60 ms apart in turn (as phones write them); `audio`: a silent AAC track beside the video; `pix_fmt`:
    the stored pixels (yuv420p10le: 10-bit); `bt2020`: YUV in BT.2020's matrix, tagged as wide-gamut HDR
    cameras write it (its primaries, the 10-bit transfer)."""
    container_format, codec, suffix = FORMATS[kind]
    path = path.with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or ("yuvj420p" if kind == "mjpeg" else "yuv420p")
        if bt2020:
            context = stream.codec_context
            context.colorspace, context.color_primaries, context.color_trc = (
                Colorspace.BT2020, ColorPrimaries.BT2020, ColorTrc.BT2020_10)
        if kind in ("h264", "mov"):
            stream.options = {"bf": "2", "g": "12"}  # B-frames, as cameras and encoders write them
        if kind == "hevc":
            stream.options = {"x265-params": "log-level=none"}
        if rotation:
            stream.set_display_rotation(rotation)
        if variable_rate:
            stream.codec_context.time_base = Fraction(1, 1000)
        sound = container.add_stream("aac", rate=16000) if audio else None
        milliseconds = 0
        for i, array in enumerate(frames(n, width, height, seed)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if bt2020:
                frame.colorspace = Colorspace.BT2020  # the encoder's RGB -> YUV uses the frame's matrix
            if variable_rate:
                frame.pts, frame.time_base = milliseconds, Fraction(1, 1000)
                milliseconds += 20 if i % 2 == 0 else 60
            for packet in stream.encode(frame):
                container.mux(packet)
        if sound is not None:
            samples = int(16000 * n / float(fps))
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.float32), format="fltp", layout="mono")
            chunk.sample_rate = 16000
            for packet in sound.encode(chunk):
                container.mux(packet)
            for packet in sound.encode():
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


def garble_bytes(path: Path, at: float = 0.5, size: int = 4096) -> Path:
    """Overwrite `size` bytes at `at` of the file with noise: damage in the middle of the frames, as a bad
    sector or an interrupted copy-over leaves it; the header and the index stay."""
    raw = bytearray(path.read_bytes())
    start = int(len(raw) * at)
    raw[start: start + size] = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(raw))
    return path


COLOURS = {"Red": (200, 40, 40), "Green": (40, 190, 60), "Blue": (40, 60, 200)}


def write_colours(path: Path, parts: list[tuple[str, int]], seed: int = 0) -> None:
    """(class, frames) in turn, 64x48 at 25 fps: each part one colour with noise."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for label, frames in parts:
            for _ in range(frames):
                noise = rng.integers(-25, 26, (48, 64, 3))
                array = np.clip(np.array(COLOURS[label]) + noise, 0, 255).astype(np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
