"""A copy of a video that a browser plays, for the page to show beside its answer.

Browsers play H.264 (or AV1) in MP4 and VP8, VP9 or AV1 in WebM; a video already in one of those is its own
preview. Any other (the demo's MPEG-4 Part 2 in AVI, HEVC from a phone, Motion JPEG...) is transcoded with
PyAV's own FFmpeg, so no `ffmpeg` command is needed: H.264 in MP4 through libx264 where the wheel has it
(PyAV 18's does), else VP9 in WebM. The copy keeps every frame's time (a variable-rate phone video stays in
step with the timeline), is turned upright as a player shows the original, has no sound, and is at most
PREVIEW_HEIGHT pixels high so that a long video converts in a fraction of the time it takes to score.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..core.errors import first_line
from ..data.decoding import video_stream

PREVIEW_HEIGHT = 360  # px: a 1080p phone video converts about 9x fewer pixels; enough to see what was scored
# (container extension, codec) pairs every current browser plays, as gradio's own video_is_playable lists them
PLAYABLE = {("mp4", "h264"), ("mp4", "av1"), ("webm", "vp8"), ("webm", "vp9"), ("webm", "av1")}
# ... in 8-bit 4:2:0: Chrome and Safari play no 10-bit H.264 (High 10) and no 4:4:4, which cameras also write
PLAYABLE_PIXELS = {"yuv420p", "yuvj420p"}
SHOWN_AS = {"libx264": "H.264", "libvpx-vp9": "VP9"}  # the encoders' names as a user knows the codecs
MILLISECONDS = Fraction(1, 1000)  # the copy's time base: each frame keeps its source time to the millisecond


@dataclass
class Preview:
    """What the page shows of a video: a file the browser plays, or None with the line that says why."""

    path: Path | None
    note: str = ""  # "" when the original plays as it is


def encoder() -> tuple[str, str]:
    """(codec, extension) of the copy: H.264/MP4 where PyAV's FFmpeg has libx264, else VP9/WebM."""
    return ("libx264", "mp4") if "libx264" in av.codecs_available else ("libvpx-vp9", "webm")


def preview(video: Path, out: Path) -> Preview:
    """The video itself where a browser plays it, else a copy written into `out` (which must exist)."""
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                return Preview(None, f"{video.name} has no video stream to show")
            context = video_stream(container).codec_context
            codec = context.name if context.pix_fmt in PLAYABLE_PIXELS else f"{context.name} ({context.pix_fmt})"
            if (video.suffix.lower().lstrip("."), codec) in PLAYABLE:
                return Preview(video)
            name, extension = encoder()
            target = out / f"{video.stem}.preview.{extension}"
            transcode(container, target, name)
    except (av.FFmpegError, ValueError, OSError) as err:  # what PyAV raises on a file it cannot read or write
        return Preview(None, f"{video.name} cannot be shown here: {first_line(err)}")
    return Preview(target, f"shown as a copy in {SHOWN_AS[name]} (a browser does not play {codec} in "
                           f"{video.suffix or 'this file'})")


def transcode(container: av.container.InputContainer, target: Path, codec: str) -> None:
    """Every frame of the container's video stream into `target`, in `codec`, upright, at most PREVIEW_HEIGHT high."""
    source = video_stream(container)
    source.thread_type = "AUTO"
    with av.open(str(target), "w") as sink:
        stream = None
        for frame in container.decode(source):
            if frame.pts is None:
                continue
            turns = round((frame.rotation or 0) / 90) % 4
            if stream is None:
                width, height = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
                stream = _open_stream(sink, codec, width, height, source)
            time = frame.time
            if turns:  # (H, W, C): turned by the display matrix's rotation, as decoding.py turns clips
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"),
                                                                                 turns)), format="rgb24")
            # bilinear: a preview needs no better, and swscale's default (bicubic) costs as much as the decoding
            frame = frame.reformat(stream.width, stream.height, "yuv420p", interpolation="FAST_BILINEAR")
            frame.pts, frame.time_base = round(time * 1000), MILLISECONDS
            sink.mux(stream.encode(frame))
        if stream is None:
            raise ValueError("no frame decodes")
        sink.mux(stream.encode(None))


def _open_stream(sink: av.container.OutputContainer, codec: str, width: int, height: int,
                 source: av.video.stream.VideoStream) -> av.video.stream.VideoStream:
    """The copy's video stream: the source's rate, at most PREVIEW_HEIGHT high, even sides (yuv420p's chroma)."""
    scale = min(1.0, PREVIEW_HEIGHT / height)
    stream = sink.add_stream(codec, rate=source.average_rate or source.guessed_rate or 25)
    stream.width, stream.height = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
    stream.pix_fmt = "yuv420p"
    stream.time_base = MILLISECONDS
    # x264's fastest preset: a 30-s 720p video converts in about 2.5 s on 2 cores instead of 5.5 (veryfast),
    # for a file about twice as large; VP9: its realtime mode, for the same reason
    stream.options = {"preset": "ultrafast", "crf": "28"} if codec == "libx264" else {"deadline": "realtime",
                                                                                        "cpu-used": "8"}
    return stream
