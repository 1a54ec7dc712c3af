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

    python bench/live.py --recordings --model runs/untrimmed [--model ...] [--seeds 3]

plays the untrimmed demo's kind of recording (configs/untrimmed.yaml: actions between stretches of
background) through the same LiveTimeline with each --model, at the page's defaults, and measures what
"nothing of interest" (the background class, or `unknown` for a model with infer.unknown: auto) does live:
the latency from an action's start to its label, from its end to the label going back to background or
unknown, and false alarms per hour on background-only recordings (a stretch of shown class labels where
nothing happens). Asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from machine import cpu_name  # noqa: E402
from timeline import parts, scenes_of  # noqa: E402  (bench/timeline.py: the scene generator)

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.decoding import stream_frames  # noqa: E402
from video_classifier.data.recordings import RecordingPlan, write_recording  # noqa: E402
from video_classifier.data.synthetic import write_long_video  # noqa: E402
from video_classifier.model.unknown import UNKNOWN  # noqa: E402
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


def nothing_shown(label: str, background: str) -> bool:
    return label in (background, UNKNOWN)


def recording_latencies(shown: list[tuple[float, str]], actions: list[tuple[float, float, str]], background: str
                        ) -> tuple[list[float], list[float], int, int]:
    """From an action's start to the first time its label is shown (before the next action), and from its end
    to the first time nothing is shown again (before the next action); the starts and ends never shown."""
    onsets, offsets, missed_on, missed_off = [], [], 0, 0
    for k, (start, end, label) in enumerate(actions):
        limit = actions[k + 1][0] if k + 1 < len(actions) else float("inf")
        on = next((at for at, seen in shown if start <= at < limit and seen == label), None)
        off = next((at for at, seen in shown if end <= at < limit and nothing_shown(seen, background)), None)
        onsets.append(on - start) if on is not None else None
        offsets.append(off - end) if off is not None else None
        missed_on, missed_off = missed_on + (on is None), missed_off + (off is None)
    return onsets, offsets, missed_on, missed_off


def false_alarms(shown: list[tuple[float, str]], background: str) -> int:
    """Stretches of a class label shown (a new one each time the shown class changes) on background-only input."""
    alarms, last = 0, None
    for _, label in shown:
        if not nothing_shown(label, background) and label != last:
            alarms += 1
        last = label
    return alarms


def play_recording(live: LiveTimeline, source: Path) -> list[tuple[float, str]]:
    """The label the page shows (live.now(), its defaults) after each scored window, with the time of the newest
    frame then."""
    after, _ = shown_labels(live, source)
    shown = []
    for at, windows in after:
        line = live.timeline()
        line.starts, line.probs = line.starts[:windows], line.probs[:windows]
        line.duration = line.starts[-1] + line.window
        shown.append((at, line.segments(line.default_min_segment(), SWITCH_COST)[-1].label))
    return shown


def recordings_bench(args: argparse.Namespace) -> None:
    """--recordings: see the module."""
    config = load_config(REPO / "configs" / "untrimmed.yaml", ["infer.unknown=auto"])
    synthetic, plan = config.data.synthetic, RecordingPlan()
    quiet = replace(plan, seconds=(60.0, 60.0), gap=(60.0, 60.0))  # one stretch of background, no action
    print(f"\n{args.seeds} recordings of {plan.seconds[0]:.0f}-{plan.seconds[1]:.0f} s and {2 * args.seeds} of "
          f"60 s background only per model, the page's defaults, {cpu_name()}\n")
    print("| model | start -> label median s | p95 s | end -> background/unknown median s | p95 s | starts missed "
          "| ends missed | false alarms / h of background only |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for ref in args.model:
            model, spec = load_model(ref, config, "torch")
            background = getattr(model.config, "background_class", None) or config.data.background
            onsets, offsets, missed_on, missed_off, alarms, quiet_seconds = [], [], 0, 0, 0, 0.0
            for seed in range(args.seeds):
                video = Path(folder) / f"recording-{seed}.mp4"
                actions = write_recording(video, synthetic, plan, 1000 + seed)
                shown = play_recording(LiveTimeline(model, spec, synthetic.fps, video.name), video)
                on, off, m_on, m_off = recording_latencies(shown, actions, background)
                onsets, offsets, missed_on, missed_off = onsets + on, offsets + off, missed_on + m_on, missed_off + m_off
            for seed in range(2 * args.seeds):
                video = Path(folder) / f"quiet-{seed}.mp4"
                write_recording(video, synthetic, quiet, 2000 + seed)
                shown = play_recording(LiveTimeline(model, spec, synthetic.fps, video.name), video)
                alarms, quiet_seconds = alarms + false_alarms(shown, background), quiet_seconds + shown[-1][0]
            print(f"| {ref}{' (unknown below ' + format(spec.unknown, '.3f') + ')' if spec.unknown else ''} | "
                  f"{quantile(onsets, 0.5)} | {quantile(onsets, 0.95)} | {quantile(offsets, 0.5)} | "
                  f"{quantile(offsets, 0.95)} | {missed_on} of {missed_on + len(onsets)} | {missed_off} of "
                  f"{missed_off + len(offsets)} | {alarms / (quiet_seconds / 3600):.1f} |", flush=True)


def quantile(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.2f}" if ordered else "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a trained model (default runs/demo; --recordings: "
                        "runs/untrimmed); repeat to compare")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--recordings", action="store_true", help="background and unknown on untrimmed recordings")
    args = parser.parse_args(argv)
    if args.recordings:
        args.model = args.model or ["runs/untrimmed"]
        recordings_bench(args)
        return
    args.model = (args.model or ["runs/demo"])[0]
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
