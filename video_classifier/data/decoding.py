"""Decode only the frames a clip needs, with torchcodec (where FFmpeg's libraries load) or PyAV.

Both return (T, C, H, W) uint8 RGB for a list of frame indices; which frames a
clip needs is decided in preprocessing.clip_frame_indices. Both read the same
stream and keep one clock per video:

- the stream is FFmpeg's best video stream (av_find_best_stream: the default
  one, else the one with the most pixels), which torchcodec opens by default and
  PyAV gives as `streams.best("video")`; a file with a small preview stream and
  a larger main one is read at the same size by both;
- an index stands for a time, its slot's middle at the video's average frame
  rate (frames over duration, FFmpeg's avg_frame_rate, what `stream_header`
  reads and the manifest keeps), never the header's nominal rate (r_frame_rate:
  90000 fps on some phone recordings); callers pass that rate, so positions and
  decoding use one clock whichever decoder runs.

The frame returned is the one a player shows at that time, turned upright as a
player shows it, in RGB as FFmpeg's command line converts it (`rgb24`): so
variable-rate phone videos, rotated ones and 10-bit ones give the same frames on
both decoders, and a constant-rate video gives exactly its frame `index`. A video
that does not decode raises DecodeError, naming the file.

A video is a path, or an object that opens as a binary file (`open()`; its `str()` names it): a
shard member held in memory, a remote file read by byte ranges (storage.py). Both decoders read
such a file object as they read a path.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np
import torch

from ..core.errors import DecodeError, UserError, first_line

# (path, indices, average frame rate or None: read from the file) -> (T, C, H, W) uint8
Decoder = Callable[..., torch.Tensor]


@contextlib.contextmanager
def opened(path: Any) -> Any:
    """What FFmpeg reads for `path`: its name as a string, or the binary file object a video that is not a
    local file opens (closed on leaving)."""
    if isinstance(path, (str, Path)):
        yield str(path)
        return
    with path.open() as file:
        yield file


def probe_header(video: Any) -> tuple[int, float, float]:
    """(frames, fps, seconds) from the header of `video` (a path, or an object that opens as a binary file);
    one that does not open, or counts no frames, is a DecodeError naming it."""
    try:
        with opened(video) as source, av.open(source) as container:
            if not container.streams.video:
                raise DecodeError(f"video {video} has no video stream")
            _, frames, fps, seconds = stream_header(container)
    except (av.FFmpegError, ValueError, OSError) as err:
        raise DecodeError(f"cannot read video {video}: {first_line(err)}") from err
    if frames <= 0 or fps <= 0:
        raise DecodeError(f"video {video} reports no frames or no frame rate")
    return frames, fps, seconds


def video_stream(container: Any) -> Any:
    """The video stream both decoders read: FFmpeg's best (torchcodec's default stream)."""
    return container.streams.best("video")


def stream_header(container: Any) -> tuple[Any, int, float, float]:
    """(video stream, frames, average fps, seconds) of an open container. Frames come from the duration
    where the container does not count them (Matroska, WebM); a stream whose header gives no duration
    (browser recordings) is measured from its packets, without decoding: frames = packets, seconds = to
    the end of the last one."""
    stream = video_stream(container)
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    if stream.duration is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        return (stream, *_measured(container, stream, fps))
    return stream, stream.frames or round(seconds * fps), fps, seconds


def _measured(container: Any, stream: Any, fps: float) -> tuple[int, float, float]:
    """(frames, fps, seconds) from the stream's packets: every packet read, none decoded."""
    begin = stream.start_time or 0
    frames, end = 0, None
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        frames += 1
        end = max(end or 0, packet.pts + (packet.duration or 0))
    seconds = float((end - begin) * stream.time_base) if end is not None else 0.0
    container.seek(begin, stream=stream, backward=True)  # back to the start for whoever reads on
    return frames, fps or (frames / seconds if seconds > 0 else 0.0), seconds


def average_fps(path: Path) -> float:
    """The video's average frame rate, as the manifest keeps it (for decoding a file no record describes)."""
    with opened(path) as source, av.open(source) as container:
        return stream_header(container)[2]


def playback_time(index: int, rate: float, begin: float) -> float:
    """The time (s) at which a player shows frame `index` of a video at `rate` frames per second that starts
    at `begin`: the middle of its slot. On a constant-rate video that frame is exactly frame `index`; on a
    variable-rate one, the frame on screen at that time."""
    return begin + (index + 0.5) / rate


def _upright(array: np.ndarray, rotation: float | None) -> np.ndarray:
    """(H, W, C) as a player shows it: turned by the display matrix's rotation (degrees, anticlockwise)."""
    turns = round((rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def rgb24(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB as FFmpeg's command line (`-pix_fmt rgb24`) and torchcodec convert it: through FFmpeg's
    scale filter at its defaults (bicubic; the frame's colour matrix and range, BT.2020 included; chroma where
    swscale puts it by default, between its luma pixels), on one thread. PyAV's own `to_ndarray(format="rgb24")`
    calls swscale bilinear, with chroma where the stream says it is (H.264's "left"): the same pixels where
    swscale's direct 8-bit converter runs, but where chroma is filtered (10-bit, odd sizes) 2.9/255 off on
    average on the real-world 10-bit files and up to 132 at colour edges."""
    graph = av.filter.Graph()
    graph.threads = 1  # one FFmpeg thread per DataLoader worker
    source = graph.add("buffer", video_size=f"{frame.width}x{frame.height}", pix_fmt=frame.format.name,
                       time_base=str(frame.time_base or "1/1"), pixel_aspect="1/1",
                       colorspace=str(int(frame.colorspace)), range=str(int(frame.color_range)))
    graph.link_nodes(source, graph.add("scale"), graph.add("format", "rgb24"), graph.add("buffersink")).configure()
    graph.vpush(frame)
    return graph.vpull().to_ndarray()


def decode_pyav(path: Path, indices: list[int], fps: float | None = None) -> torch.Tensor:
    """The frames shown at the indices' playback times at `fps` (the average rate), upright: seek to the
    keyframe before the first, decode forward, convert only the frames picked to RGB. A frame's time is
    FFmpeg's best-effort timestamp, as players and torchcodec take it (BestEffortClock)."""
    wanted = sorted(set(indices))
    picked: dict[int, av.VideoFrame] = {}
    with opened(path) as source, av.open(source) as container:
        stream = video_stream(container)
        stream.codec_context.thread_count = 1  # one FFmpeg thread per DataLoader worker
        rate = fps or stream_header(container)[2]
        begin = float((stream.start_time or 0) * stream.time_base)
        times = {i: playback_time(i, rate, begin) for i in wanted}
        container.seek(int(times[wanted[0]] / stream.time_base), backward=True, any_frame=False, stream=stream)
        clock = BestEffortClock(stream.time_base, trust_pts=not _untimed_b_frames(container, stream))
        pending, previous, shown = list(wanted), None, 0.0
        for frame in container.decode(stream):
            at = clock(frame)
            if at is None:
                continue
            while pending and times[pending[0]] < at:  # shown before this frame: the previous one
                picked[pending.pop(0)] = previous or frame
            if not pending:
                break
            previous, shown = frame, at
        if pending and previous is not None and times[pending[-1]] <= shown + 2 / rate:
            picked.update((i, previous) for i in pending)  # within the last frame's time on screen
            pending = []
    if pending:
        end = f" (it ends at {shown:.2f} s)" if previous is not None else ""
        raise DecodeError(f"frames {pending[:3]} not found in {path}{end}")
    arrays = {id(f): _upright(rgb24(f), f.rotation) for f in picked.values()}
    # (T, H, W, C) -> (T, C, H, W)
    return torch.from_numpy(np.stack([arrays[id(picked[i])] for i in indices])).permute(0, 3, 1, 2)


def stream_frames(source: str, open_timeout_s: float = 10.0, options: dict[str, str] | None = None) -> tuple[float, Any]:
    """A video as it plays: a file, or a stream URL FFmpeg reads (rtsp://, http(s)://, udp://...). Returns its
    average frame rate (0 where the stream does not say) and an iterator of (seconds since its first frame,
    (C, H, W) uint8 upright RGB) in the decoder's order, timed as decode_pyav times them. A source that does
    not open gives one UserError naming it; one that breaks off while playing, a DecodeError. `options`:
    FFmpeg's format options (protocol_whitelist...)."""
    try:
        container = av.open(source, timeout=open_timeout_s, options=options or {})
        stream = video_stream(container)
        if stream is None:
            container.close()
            raise UserError("it has no video stream")
    except (av.FFmpegError, OSError, UserError) as err:
        raise UserError(f"could not open the stream {source}: {first_line(err)}; check the address and that it "
                        "plays (ffplay or VLC)") from None
    rate = float(stream.average_rate or stream.guessed_rate or 0)

    def frames() -> Any:
        clock = BestEffortClock(stream.time_base, trust_pts=not _untimed_b_frames(container, stream))
        first = None
        try:
            for frame in container.decode(stream):
                at = clock(frame)
                if at is None:
                    continue
                first = at if first is None else first
                yield at - first, torch.from_numpy(_upright(rgb24(frame), frame.rotation)).permute(2, 0, 1)
        except av.FFmpegError as err:
            raise DecodeError(f"the stream {source} broke off: {first_line(err)}") from err
        finally:
            container.close()

    return rate, frames()


def _untimed_b_frames(container: Any, stream: Any) -> bool:
    """AVI holds no presentation times: with B-frames, the "pts" its demuxer makes up are out of order."""
    return "avi" in container.format.name.split(",") and bool(stream.codec_context.has_b_frames)


class BestEffortClock:
    """Frame times as FFmpeg's best-effort timestamp gives them (libavcodec's guess_correct_pts, which
    PyAV does not expose): a frame's presentation time while those come in order, its decoding time once
    presentation times have gone backwards more often than decoding times have. AVI stores no
    presentation times, so with B-frames its "pts" come out of the decoder shuffled (1, 2, 4, 3, 6, 5...):
    players, and torchcodec, then show the frames in the decoder's order, timed by decoding time.
    FFmpeg keeps its counts across seeks, so a decoder that has seen such a stream once times it by
    decoding time from its first frame on: `trust_pts=False` starts there."""

    def __init__(self, time_base: Any, trust_pts: bool = True):
        self.time_base = time_base
        self.faulty_pts, self.faulty_dts = (0 if trust_pts else 1), 0
        self.last_pts = self.last_dts = None

    def __call__(self, frame: av.VideoFrame) -> float | None:
        pts, dts = frame.pts, frame.dts
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        best = pts if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None) else dts
        return None if best is None else float(best * self.time_base)


class TorchcodecReader:
    """One video held open by torchcodec for many reads: its index is built once (a long video's
    timeline reads thousands of windows). Called as a Decoder: (path, indices, fps)."""

    def __init__(self, path: Path, fps: float | None = None):
        from torchcodec.decoders import VideoDecoder

        self.path = path
        # a file object stays open as long as the decoder reads it
        self.file = None if isinstance(path, (str, Path)) else path.open()
        self.decoder = VideoDecoder(str(path) if self.file is None else self.file, num_ffmpeg_threads=1,
                                    dimension_order="NCHW")
        meta = self.decoder.metadata
        # not meta.average_fps_from_header: torchcodec reads it from r_frame_rate, the nominal rate
        self.rate = fps or average_fps(path)
        begin = meta.begin_stream_seconds_from_header
        self.begin = float(meta.begin_stream_seconds if begin is None else begin)
        self.first, self.end = float(meta.begin_stream_seconds), float(meta.end_stream_seconds)

    def __call__(self, path: Path, indices: list[int], fps: float | None = None) -> torch.Tensor:
        rate = fps or self.rate
        times = [playback_time(i, rate, self.begin) for i in indices]
        late = [i for i, t in zip(indices, times) if t > self.end + 1 / rate]
        if late:
            raise DecodeError(f"frames {late[:3]} not found in {self.path} (it ends at {self.end:.2f} s)")
        seconds = [min(max(t, self.first), self.end - 1e-6) for t in times]
        return self.decoder.get_frames_played_at(seconds=seconds).data


def decode_torchcodec(path: Path, indices: list[int], fps: float | None = None) -> torch.Tensor:
    """The frames shown at the indices' playback times at `fps`; torchcodec turns them upright itself.

    A local file's reader is kept for the next clip of it (OPEN_READERS per process): torchcodec's exact
    seeking scans every packet when a file opens, which for a recording's segments, many clips of one long
    file, cost 3.5x a short file's clip (bench/data.py --segments) when paid at every clip."""
    if not isinstance(path, (str, Path)):
        return TorchcodecReader(path, fps)(path, indices)
    status = os.stat(path)
    reader, lock = _open_reader(str(path), status.st_mtime_ns, status.st_size, os.getpid(), fps)
    with lock:  # one decoder is not for two threads at once (the page scores in threads)
        return reader(path, indices, fps)


OPEN_READERS = 8  # readers a process keeps open (a file descriptor and a packet index each)


@functools.lru_cache(maxsize=OPEN_READERS)
def _open_reader(path: str, mtime: int, size: int, pid: int, fps: float | None
                 ) -> tuple[TorchcodecReader, threading.Lock]:
    """A reader of `path` as it is now (a changed file gets a new one), for this process only: a forked
    DataLoader worker must not share its parent's file offset. `fps`: the rate the caller gives, as an
    unkept reader took it (none: the file's average rate, read once)."""
    return TorchcodecReader(Path(path), fps), threading.Lock()


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

    def reader(self, path: Path, fps: float | None = None) -> Decoder:
        """A decoder for many reads of one video (torchcodec keeps it open; PyAV seeks anew each time)."""
        return TorchcodecReader(path, fps) if self.name == "torchcodec" else self.decode


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
