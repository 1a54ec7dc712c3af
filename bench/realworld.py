"""Real videos no one here made, read by both decoders: does each decode or get rejected with a reason,
do PyAV and torchcodec pick the same frames, and do they give the same scores?

    python bench/realworld.py [--model runs/demo] [--videos ../shared/realworld/videos] [--clips 5]

For every file: the default check (prepare_data.py's) and, where it passes, `--clips` clips spread over the
video as evaluation takes them, decoded by each decoder at the one clock the manifest keeps. Per clip it
counts the distinct frames each decoder returned and checks that frame k of one decoder is, of all the
clip's frames of the other, the one nearest to frame k ("same frames"); it gives the largest mean absolute
pixel difference between the decoders' frames (of 255) and, scored by `--model` from the centre crop, the
top-1 of each and the largest score difference. Needs torchcodec (FFmpeg's libraries). Asserts nothing;
tests/test_realworld.py checks the same numbers against stated tolerances.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from video_classifier.core.errors import DecodeError, first_line  # noqa: E402
from video_classifier.data.clips import decode_clip  # noqa: E402
from video_classifier.data.datasets import ViewDataset  # noqa: E402
from video_classifier.data.decoding import decode_pyav, decode_torchcodec, torchcodec_problem  # noqa: E402
from video_classifier.data.manifest import VideoRecord  # noqa: E402
from video_classifier.data.preprocessing import clip_frame_indices, exact_fps, spread_clip_starts  # noqa: E402
from video_classifier.data.user_videos import check_video  # noqa: E402
from video_classifier.engine.scoring import video_scores  # noqa: E402
from video_classifier.model.model_spec import ModelSpec  # noqa: E402

VIDEOS = REPO.parent / "shared" / "realworld" / "videos"
DECODERS = {"pyav": decode_pyav, "torchcodec": decode_torchcodec}


@dataclass
class Reading:
    video: str
    rejected: str = ""  # the check's reason, or a decoder's
    frames: int = 0
    fps: float = 0.0
    seconds: float = 0.0
    distinct: tuple[int, int] = (0, 0)  # fewest distinct frames in a clip: PyAV, torchcodec
    same_frames: bool = False  # every clip: frame k of one decoder is nearest to frame k of the other
    pixel_diff: float = 0.0  # largest mean |PyAV - torchcodec| of a frame, of 255
    top1: tuple[str, str] = ("", "")
    score_diff: float = 0.0  # largest |PyAV - torchcodec| of a class's score
    margin: float = 0.0  # PyAV's top score less its second


def nearest_is_diagonal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """(T, C, H, W) uint8 each: for every k, b[k] is the frame of `b` nearest to a[k] (ties allowed)."""
    a, b = a.flatten(1).float(), b.flatten(1).float()
    distance = torch.cdist(a, b)
    return bool((distance.diagonal() <= distance.min(1).values + 1e-3).all())


def read(path: Path, model, spec: ModelSpec, clips: int) -> Reading:
    """One video through the check and both decoders."""
    try:
        frames, fps, seconds = check_video(str(path))
    except ValueError as err:
        return Reading(path.name, rejected=first_line(err))
    reading = Reading(path.name, frames=frames, fps=fps, seconds=seconds)
    record = VideoRecord(str(path), "", "", "", frames, fps, seconds)
    length = spec.preprocess.clip_duration(fps)
    decoded = {name: [] for name in DECODERS}
    try:
        for start in spread_clip_starts(seconds, length, clips):
            indices = clip_frame_indices(start, start + length, exact_fps(fps), frames, spec.preprocess.num_frames)
            for name, decode in DECODERS.items():
                decoded[name].append(decode_clip(decode, path, indices, fps))
        probs = {name: video_scores(model, spec, ViewDataset([record], "", {}, spec.preprocess, clips, 1, decode),
                                    16)[0]
                 for name, decode in DECODERS.items()}
    except DecodeError as err:
        reading.rejected = f"passes the check, then: {first_line(err)}"
        return reading
    pyav, torchcodec = decoded["pyav"], decoded["torchcodec"]
    reading.distinct = tuple(min(len(torch.unique(c.flatten(1), dim=0)) for c in decoded[name]) for name in DECODERS)
    reading.same_frames = all(a.shape == b.shape and nearest_is_diagonal(a, b) for a, b in zip(pyav, torchcodec))
    reading.pixel_diff = max(((a.float() - b.float()).abs().mean((1, 2, 3)).max().item() if a.shape == b.shape
                              else float("inf")) for a, b in zip(pyav, torchcodec))
    reading.top1 = tuple(spec.id2label[int(spec.task.predicted(probs[name]))] for name in DECODERS)
    reading.score_diff = (probs["pyav"] - probs["torchcodec"]).abs().max().item()
    top_two = probs["pyav"].topk(2).values
    reading.margin = (top_two[0] - top_two[1]).item()
    return reading


def table(readings: list[Reading]) -> str:
    lines = ["| video | frames, fps, s | distinct frames per clip (PyAV / torchcodec) | same frames | "
             "max pixel diff (of 255) | top-1 agrees | max score diff |",
             "|---|---|---|---|---|---|---|"]
    for r in readings:
        if r.rejected:
            lines.append(f"| `{r.video}` | rejected: {r.rejected} | | | | | |")
            continue
        lines.append(f"| `{r.video}` | {r.frames}, {r.fps:.3f}, {r.seconds:.2f} | {r.distinct[0]} / {r.distinct[1]} | "
                     f"{'yes' if r.same_frames else 'NO'} | {r.pixel_diff:.2f} | "
                     f"{'yes' if r.top1[0] == r.top1[1] else 'NO'} | {r.score_diff:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "runs" / "demo"), help="a trained model folder (make demo)")
    parser.add_argument("--videos", default=str(VIDEOS))
    parser.add_argument("--clips", type=int, default=5)
    args = parser.parse_args(argv)
    problem = torchcodec_problem()
    if problem is not None:
        raise SystemExit(f"torchcodec does not load here ({problem}): install FFmpeg's shared libraries")
    from video_classifier.model.modeling import load_trained

    model, spec = load_trained(args.model)
    readings = [read(path, model, spec, args.clips) for path in sorted(Path(args.videos).iterdir())
                if path.is_file() and path.suffix != ".md"]
    print(f"{len(readings)} videos in {args.videos}; model {args.model} ({spec.preprocess.num_frames} frames "
          f"x stride {spec.preprocess.sample_rate}), {args.clips} clips each, centre crop")
    print(table(readings))


if __name__ == "__main__":
    main()
