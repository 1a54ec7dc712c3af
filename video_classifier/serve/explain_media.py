"""An explanation (serve/explain.py) as what people look at, written into a folder as the timeline's files are:

- `<stem>.explain.mp4`: the video with the map blended in, every frame of it at its own frame rate
  (H.264, yuv420p: plays in a browser; odd sizes lose their last row or column); a frame shows the map
  of the nearest sampled frame.
- `<stem>.explain.png`: a strip of key frames (those where the map weighs most), each above its map.
- `<stem>.explain_curve.png`: the label's score per window over the map's mass per frame, on one time axis.
- `<stem>.explain.json`: the label, the method, the window scores and the curve, as numbers.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..data.clips import decode_clip
from ..data.manifest import probe_video
from ..data.preprocessing import exact_fps
from ..model.model_spec import ModelSpec
from .explain import Explanation, explain

KEY_FRAMES = 6
STRENGTH = 0.6  # at a map's maximum, 60% of the pixel is the heat colour


def heat(maps: np.ndarray) -> np.ndarray:
    """(..., H, W) in [0, 1] -> (..., H, W, 3) float RGB in [0, 1] (matplotlib's inferno)."""
    from matplotlib import colormaps

    return colormaps["inferno"](maps)[..., :3]


def blended(frame: np.ndarray, map_: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 with a (H, W) map in [0, 1] laid over it; the weaker the map, the clearer the frame."""
    weight = (STRENGTH * map_)[..., None]
    out = frame.astype(np.float32) * (1 - weight) + heat(map_) * 255 * weight
    return out.round().clip(0, 255).astype(np.uint8)


def nearest(explanation: Explanation, frame: int) -> np.ndarray:
    """The map of the sampled frame nearest `frame`."""
    frames = np.asarray(explanation.frames)
    return explanation.maps[int(np.abs(frames - frame).argmin())]


def write_video(explanation: Explanation, source: Path, out: Path) -> None:
    """Every frame of `source`, in order, blended with its nearest map, as H.264 at the source's rate."""
    rate = exact_fps(explanation.fps)
    with av.open(str(source)) as reader, av.open(str(out), "w") as writer:
        stream = None
        for number, frame in enumerate(reader.decode(video=0)):
            pixels = frame.to_ndarray(format="rgb24")
            if stream is None:
                stream = writer.add_stream("libx264", rate=rate)
                stream.height, stream.width = pixels.shape[0] // 2 * 2, pixels.shape[1] // 2 * 2
                stream.pix_fmt, stream.options = "yuv420p", {"crf": "23"}
            pixels = blended(pixels, nearest(explanation, number))[:stream.height, :stream.width]
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            picture.pts, picture.time_base = number, Fraction(1) / rate
            writer.mux(stream.encode(picture))
        if stream is not None:
            writer.mux(stream.encode())


def key_frames(explanation: Explanation, count: int = KEY_FRAMES) -> list[int]:
    """Positions (into explanation.frames) of the `count` frames whose map weighs most, in time order."""
    return sorted(np.argsort(-explanation.curve, kind="stable")[:count].tolist())


def write_strip(explanation: Explanation, frames: dict[int, np.ndarray], out: Path) -> None:
    """Key frames (top) above the same frames with their maps blended in (bottom), with their times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = key_frames(explanation)
    fig, axes = plt.subplots(2, len(keys), figsize=(2.2 * len(keys), 4.2), squeeze=False)
    for column, k in enumerate(keys):
        frame = frames[explanation.frames[k]]
        axes[0, column].imshow(frame)
        axes[1, column].imshow(blended(frame, explanation.maps[k]))
        axes[0, column].set_title(f"{explanation.times[k]:.2f} s", fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(f"{Path(explanation.video).name}: where {explanation.label} was seen ({explanation.method})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_curve(explanation: Explanation, window: float, duration: float, out: Path) -> None:
    """The label's score per window (steps) above the map's mass per frame: which seconds mattered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(max(8.0, min(24.0, duration / 10)), 3.8))
    for start, score in zip(explanation.starts, explanation.scores):
        top.hlines(score, start, start + window, color="tab:blue", lw=2)
    top.set_ylim(0, 1.02)
    top.set_ylabel("score")
    top.set_title(f"{Path(explanation.video).name}: {explanation.label}", fontsize=9)
    bottom.fill_between(explanation.times, explanation.curve, color="tab:orange", alpha=0.5, step="mid")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel(f"map mass\n({explanation.method})", fontsize=8)
    bottom.set_xlabel("seconds")
    bottom.set_xlim(0, duration)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_explanation(explanation: Explanation, source: Path, frames: dict[int, np.ndarray], window: float,
                      duration: float, out: Path) -> dict[str, Path]:
    """The four files in `out` (made if missing); `frames` the decoded key frames' pixels (H, W, 3) by number."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{source.stem}.explain"
    paths = {"mp4": out / f"{stem}.mp4", "png": out / f"{stem}.png", "curve": out / f"{source.stem}.explain_curve.png",
             "json": out / f"{stem}.json"}
    write_video(explanation, source, paths["mp4"])
    write_strip(explanation, frames, paths["png"])
    write_curve(explanation, window, duration, paths["curve"])
    paths["json"].write_text(json.dumps({
        "video": explanation.video, "label": explanation.label, "method": explanation.method,
        "window": window, "starts": explanation.starts, "scores": [round(s, 6) for s in explanation.scores],
        "frames": explanation.frames, "times": [round(float(t), 6) for t in explanation.times],
        "curve": [round(float(c), 6) for c in explanation.curve]}, indent=1) + "\n")
    return paths


def explained_files(model: Any, spec: ModelSpec, video: Path, decoding: Any, method: str, label: str | None,
                    out: Path, batch_size: int = 4) -> tuple[Explanation, dict[str, Path]]:
    """explain() of one video and its four files in `out`; the key frames decoded by `decoding` too."""
    found = explain(model, spec, video, decoding, method, label, batch_size)
    _, fps, duration = probe_video(video)
    keys = [found.frames[k] for k in key_frames(found)]
    pixels = decode_clip(decoding.reader(video, fps), video, keys, fps)  # (K, C, H, W) uint8
    frames = {n: p.permute(1, 2, 0).numpy() for n, p in zip(keys, pixels)}
    window = float(spec.preprocess.clip_duration(fps))
    return found, write_explanation(found, video, frames, window, duration, out)
