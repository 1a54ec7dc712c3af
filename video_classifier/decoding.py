"""Decode only the frames a clip needs, with torchcodec (where FFmpeg's libraries load) or PyAV.

Both return (T, C, H, W) uint8 RGB for a list of frame indices; which frames a
clip needs is decided in preprocessing.clip_frame_indices.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import torch

from .errors import UserError

Decoder = Callable[[Path, list[int]], torch.Tensor]


def decode_pyav(path: Path, indices: list[int]) -> torch.Tensor:
    """Seek to the keyframe before the first needed frame; convert only the needed frames to RGB."""
    wanted = sorted(set(indices))
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # one FFmpeg thread per DataLoader worker
        rate = stream.average_rate or stream.guessed_rate
        start_pts = stream.start_time or 0

        def index_of(pts: int) -> int:
            return round((pts - start_pts) * stream.time_base * rate)

        target_pts = start_pts + round(Fraction(wanted[0]) / (rate * stream.time_base))
        container.seek(int(target_pts), backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            index = index_of(frame.pts)
            if index in wanted and index not in frames:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= wanted[-1]:
                break
    missing = [i for i in wanted if i not in frames]
    if missing:
        raise RuntimeError(f"frames {missing[:3]} not found in {path}")
    # (T, H, W, C) -> (T, C, H, W)
    return torch.from_numpy(np.stack([frames[i] for i in indices])).permute(0, 3, 1, 2)


def decode_torchcodec(path: Path, indices: list[int]) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(path), num_ffmpeg_threads=1, dimension_order="NCHW")
    return decoder.get_frames_at(indices=indices).data


def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here, or None when it loads."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception as err:  # it raises RuntimeError, OSError or ImportError when FFmpeg's libraries are missing
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return None


def choose_decoder(name: str) -> tuple[str, Decoder]:
    """The decoder for data.decoder ('auto', 'torchcodec' or 'pyav') and the name of the one chosen."""
    if name == "pyav":
        return "pyav", decode_pyav
    problem = torchcodec_problem()
    if problem is None:
        return "torchcodec", decode_torchcodec
    if name == "torchcodec":
        raise UserError(
            f"data.decoder is torchcodec but it does not load ({problem}): install FFmpeg's shared "
            "libraries (Debian: apt-get install ffmpeg) or set data.decoder: auto"
        )
    return "pyav", decode_pyav
