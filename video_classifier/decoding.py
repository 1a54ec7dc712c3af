"""Decode only the frames a clip needs, with torchcodec (where FFmpeg's libraries load) or PyAV.

Both return (T, C, H, W) uint8 RGB for a list of frame indices; which frames a
clip needs is decided in preprocessing.clip_frame_indices. An index stands for a
time (its slot's middle at the header's frame rate), and the frame returned is the
one a player shows then, turned upright as a player shows it: so variable-rate
phone videos and rotated ones give the same frames on both decoders, and a
constant-rate video gives exactly its frame `index`.
"""

from __future__ import annotations

import functools
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np
import torch

from .errors import UserError

Decoder = Callable[[Path, list[int]], torch.Tensor]


def playback_time(index: int, rate: float, begin: float) -> float:
    """The time (s) at which a player shows frame `index` of a video at `rate` frames per second that starts
    at `begin`: the middle of its slot. On a constant-rate video that frame is exactly frame `index`; on a
    variable-rate one, the frame on screen at that time."""
    return begin + (index + 0.5) / rate


def _upright(array: np.ndarray, rotation: float | None) -> np.ndarray:
    """(H, W, C) as a player shows it: turned by the display matrix's rotation (degrees, anticlockwise)."""
    turns = round((rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def decode_pyav(path: Path, indices: list[int]) -> torch.Tensor:
    """The frames shown at the indices' playback times, upright: seek to the keyframe before the first,
    decode forward, convert only the frames picked to RGB."""
    wanted = sorted(set(indices))
    picked: dict[int, av.VideoFrame] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # one FFmpeg thread per DataLoader worker
        rate = float(stream.average_rate or stream.guessed_rate)
        begin = float((stream.start_time or 0) * stream.time_base)
        times = {i: playback_time(i, rate, begin) for i in wanted}
        container.seek(int(times[wanted[0]] / stream.time_base), backward=True, any_frame=False, stream=stream)
        pending, previous = list(wanted), None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            while pending and times[pending[0]] < frame.time:  # shown before this frame: the previous one
                picked[pending.pop(0)] = previous or frame
            if not pending:
                break
            previous = frame
        if pending and previous is not None and times[pending[-1]] <= previous.time + 2 / rate:
            picked.update((i, previous) for i in pending)  # within the last frame's time on screen
            pending = []
    if pending:
        end = f" (it ends at {previous.time:.2f} s)" if previous is not None else ""
        raise RuntimeError(f"frames {pending[:3]} not found in {path}{end}")
    arrays = {id(f): _upright(f.to_ndarray(format="rgb24"), f.rotation) for f in picked.values()}
    # (T, H, W, C) -> (T, C, H, W)
    return torch.from_numpy(np.stack([arrays[id(picked[i])] for i in indices])).permute(0, 3, 1, 2)


class TorchcodecReader:
    """One video held open by torchcodec for many reads: its index is built once (a long video's
    timeline reads thousands of windows). Called as a Decoder: (path, indices)."""

    def __init__(self, path: Path):
        from torchcodec.decoders import VideoDecoder

        self.path = path
        self.decoder = VideoDecoder(str(path), num_ffmpeg_threads=1, dimension_order="NCHW")
        meta = self.decoder.metadata
        self.rate = float(meta.average_fps_from_header or meta.average_fps)  # the header's rate, as PyAV reads it
        begin = meta.begin_stream_seconds_from_header
        self.begin = float(meta.begin_stream_seconds if begin is None else begin)
        self.first, self.end = float(meta.begin_stream_seconds), float(meta.end_stream_seconds)

    def __call__(self, path: Path, indices: list[int]) -> torch.Tensor:
        times = [playback_time(i, self.rate, self.begin) for i in indices]
        late = [i for i, t in zip(indices, times) if t > self.end + 1 / self.rate]
        if late:
            raise RuntimeError(f"frames {late[:3]} not found in {self.path} (it ends at {self.end:.2f} s)")
        seconds = [min(max(t, self.first), self.end - 1e-6) for t in times]
        return self.decoder.get_frames_played_at(seconds=seconds).data


def decode_torchcodec(path: Path, indices: list[int]) -> torch.Tensor:
    """The frames shown at the indices' playback times; torchcodec turns them upright itself."""
    return TorchcodecReader(path)(path, indices)


def _probe_video() -> bytes:
    """A 4-frame 32x32 mpeg4 video in memory, made with PyAV, for torchcodec to decode."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


@functools.cache
def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here, or None when it can.

    Importing torchcodec succeeds without FFmpeg's shared libraries; it loads its
    core library only when the first decoder is made. So the probe decodes a
    small video in memory: only a decoder that really ran counts."""
    try:
        from torchcodec.decoders import VideoDecoder

        frames = VideoDecoder(_probe_video(), num_ffmpeg_threads=1, dimension_order="NCHW").get_frames_at([0, 3]).data
        if tuple(frames.shape) != (2, 3, 32, 32):
            return f"it decoded a test video to shape {tuple(frames.shape)}, not (2, 3, 32, 32)"
    # torchcodec raises RuntimeError, OSError or ImportError when FFmpeg's libraries are missing or do not match
    except (ImportError, OSError, RuntimeError, ValueError) as err:
        return _summary(err)
    return None


def _summary(err: Exception) -> str:
    """One line of torchcodec's many-line load error: its first line and the first library it missed."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    missed = next((line for line in lines if line.startswith("OSError: lib")), None)
    first = lines[0].removesuffix(" Likely causes:").rstrip(".")
    return f"{first}; first library missed: {missed.removeprefix('OSError: ')}" if missed else first


@dataclass(frozen=True)
class Decoding:
    """The decoder a run uses, and why it was chosen."""

    name: str  # "torchcodec" or "pyav"
    decode: Decoder
    reason: str

    def describe(self) -> str:
        return f"{self.name} decoder ({self.reason})"

    def reader(self, path: Path) -> Decoder:
        """A decoder for many reads of one video (torchcodec keeps it open; PyAV seeks anew each time)."""
        return TorchcodecReader(path) if self.name == "torchcodec" else self.decode


_announced: set[str] = set()


def choose_decoder(name: str) -> Decoding:
    """The decoder for data.decoder ('auto', 'torchcodec' or 'pyav'), and why it was chosen."""
    if name == "pyav":
        return Decoding("pyav", decode_pyav, "data.decoder: pyav")
    problem = torchcodec_problem()
    if problem is None:
        return Decoding("torchcodec", decode_torchcodec, f"data.decoder: {name}, FFmpeg's libraries load")
    if name == "torchcodec":
        raise UserError(
            f"data.decoder is torchcodec but it does not load here ({problem}): install FFmpeg's shared "
            "libraries (Debian: apt-get install ffmpeg; macOS: brew install ffmpeg) or set data.decoder: auto"
        )
    return Decoding("pyav", decode_pyav, f"data.decoder: auto, torchcodec does not load here: {problem}")


def announce(decoding: Decoding, already_said: bool = False) -> None:
    """Say once per process, on stderr, which decoder runs and why (`already_said`: the caller printed it)."""
    if decoding.describe() not in _announced and not already_said:
        print(f"decoding: {decoding.describe()}", file=sys.stderr)
    _announced.add(decoding.describe())
