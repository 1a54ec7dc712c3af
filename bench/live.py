"""Live scoring (the page's camera and stream URL tab): how long after a scene changes the label shown changes,
and whether the scorer keeps up with the source.

    python bench/live.py [--model runs/demo] [--seconds 60] [--seeds 3]

Makes, per seed, a --seconds video of scenes cut into shots (bench/timeline.py's generator: a pan changes
direction at each scene cut, shots inside a scene change texture, speed and place but not motion) and plays
it through serve/live.py's LiveTimeline frame by frame, as the page does. After each window is scored, the
label the page would show is read under three rules, over the same windows' scores:

- each window's top label (no smoothing: the baseline);
- the label path (switch cost) without a shortest segment, and with segments under one window merged;
- the page's defaults: the label path and segments under two windows merged (what live.py shows).

For each rule: the latency from each scene cut to the first time the new scene's label is shown (in the
source's seconds: the time of the newest frame then; median, 95th percentile, largest), cuts never shown,
label changes that are not a scene's (flicker, per minute), and the share of the time a wrong label is
shown. Then the compute: milliseconds to score one window on this CPU against the stride (the time a live
source gives it), i.e. whether the page keeps up or skips windows. Needs the demo model (`make demo`).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from machine import cpu_name  # noqa: E402
from timeline import parts, scenes_of  # noqa: E402  (bench/timeline.py: the scene generator)

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.decoding import stream_frames  # noqa: E402
from video_classifier.data.synthetic import write_long_video  # noqa: E402
from video_classifier.serve.inference import load_model  # noqa: E402
from video_classifier.serve.live import LiveTimeline  # noqa: E402
from video_classifier.serve.timeline import SWITCH_COST  # noqa: E402

# (name, switch cost, shortest segment in windows; None: no label path, each window's top label)
RULES = [("each window's top label (no smoothing)", None, None),
         (f"label path (switch cost {SWITCH_COST}), no shortest segment", SWITCH_COST, 0.0),
         ("label path, segments >= 1 window", SWITCH_COST, 1.0),
         ("the page's defaults (label path, segments >= 2 windows)", SWITCH_COST, 2.0)]


def shown_labels(live: LiveTimeline, source: Path) -> tuple[list[tuple[float, list[float]]], float]:
    """Play `source` through `live`; after each scored window (the time of the newest frame then, every window's
    scores so far). Also the mean seconds the model took per window."""
    _, frames = stream_frames(str(source))
    after, spent, windows = [], 0.0, 0
    for at, frame in frames:
        live.push(at, frame)
        ready, clips = live.take()
        if ready:
            began = time.perf_counter()
            probs = live.score_clips(clips)
            spent, windows = spent + time.perf_counter() - began, windows + len(ready)
            live.add(ready, probs)
            after.append((live.seconds, len(live.starts)))
    return after, spent / max(windows, 1)


def label_under(live: LiveTimeline, windows: int, cost: float | None, shortest: float | None) -> str:
    """The label shown once the first `windows` windows are scored, under one rule."""
    if cost is None:
        return live.labels[int(live.probs[windows - 1].argmax())]
    line = live.timeline()
    line.starts, line.probs = line.starts[:windows], line.probs[:windows]
    line.duration = line.starts[-1] + line.window
    return line.segments(shortest * line.window, cost)[-1].label


def measure(live: LiveTimeline, after: list[tuple[float, int]], truth: list[tuple[float, float, str]],
            cost: float | None, shortest: float | None) -> dict:
    shown = [(at, label_under(live, n, cost, shortest)) for at, n in after]
    latencies, missed = [], 0
    for (_, cut, _), (_, end, label) in zip(truth, truth[1:]):
        first = next((at for at, seen in shown if cut <= at < end and seen == label), None)
        if first is None:
            missed += 1
        else:
            latencies.append(first - cut)
    changes = sum(a[1] != b[1] for a, b in zip(shown, shown[1:]))
    wrong = sum(b[0] - a[0] for a, b in zip(shown, shown[1:])
                if a[1] != next(label for start, end, label in truth if start <= a[0] < end or end == truth[-1][1]))
    return {"latencies": latencies, "missed": missed, "flicker": max(0, changes - (len(truth) - 1 - missed)),
            "wrong": wrong, "seconds": shown[-1][0] - shown[0][0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    config = load_config(REPO / "configs" / "demo.yaml")
    model, spec = load_model(args.model, config, "torch")
    results: dict[str, list[dict]] = {name: [] for name, _, _ in RULES}
    per_window, stride = [], 0.0
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            video = Path(folder) / f"live-{seed}.mp4"
            shots = write_long_video(video, parts(args.seconds, random.Random(seed)), config.data.synthetic, seed)
            truth = scenes_of(shots)
            rate, _ = stream_frames(str(video))
            live = LiveTimeline(model, spec, rate, video.name)
            after, seconds = shown_labels(live, video)
            per_window.append(seconds)
            stride = live.stride
            for name, cost, shortest in RULES:
                results[name].append(measure(live, after, truth, cost, shortest))
            print(f"seed {seed}: {len(truth)} scenes, {len(live.starts)} windows", file=sys.stderr)
    report(results, per_window, stride, args)


def report(results: dict[str, list[dict]], per_window: list[float], stride: float, args: argparse.Namespace) -> None:
    cpu = cpu_name()
    print(f"\n{args.seeds} seeds x {args.seconds:.0f} s of scenes cut into shots, demo model ({args.model}), "
          f"{torch.get_num_threads()} threads, {cpu}, torch kernels {torch.backends.cpu.get_cpu_capability()}\n")
    print("| rule | cut -> label median s | p95 s | max s | cuts missed | flicker /min | wrong label shown |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        latencies = sorted(x for r in runs for x in r["latencies"])
        missed = sum(r["missed"] for r in runs)
        minutes = sum(r["seconds"] for r in runs) / 60
        flicker = sum(r["flicker"] for r in runs) / minutes
        wrong = sum(r["wrong"] for r in runs) / (minutes * 60)
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else float("nan")
        print(f"| {name} | {statistics.median(latencies):.2f} | {p95:.2f} | {max(latencies):.2f} | {missed} of "
              f"{missed + len(latencies)} | {flicker:.1f} | {wrong:.1%} |")
    mean = statistics.mean(per_window)
    print(f"\nscoring one window: {mean * 1000:.1f} ms on this CPU; a live source gives it {stride * 1000:.0f} ms "
          f"(the stride): {'keeps up' if mean < stride else 'falls behind: the page skips windows to stay current'}"
          f" ({stride / mean:.1f}x real time)")


if __name__ == "__main__":
    main()
