"""infer.py --timeline on long generated videos at its default options: segments against the truth, and
peak memory flat in the video's length.

    python bench/timeline.py [--model runs/demo] [--minutes 10] [--seeds 3] [--min-segment SECONDS]

Makes, per seed, a 10-second and a --minutes video from the demo's generator: scenes of one class each
(the camera's pan changing direction at a scene cut), every scene cut into 1-4 shots (a new texture,
speed and place, the same motion: as real footage is edited). Runs `infer.py --timeline` on each in a
fresh process, at its defaults unless --min-segment is given, watching its peak RSS. Prints, per video:
windows, wall time, peak RSS, segments against scenes, segments of another class inside a scene and at a
cut (within 0.5 s of one), and how many scene cuts have a segment boundary within 0.5 s (and the largest
miss). Needs the demo model (`make demo`). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import torch  # noqa: E402

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.synthetic import CLASSES, write_long_video  # noqa: E402
from video_classifier.serve.timeline import SWITCH_COST, Timeline  # noqa: E402

NEAR = 0.5  # seconds: a cut found this close counts as found; a wrong segment this close to a cut is "at" it

# labelling rules over the same windows: (name, switch_cost, place_cuts)
RULES = [("each window's top label, cuts half-way between windows", 0.0, False),
         (f"label path (switch cost {SWITCH_COST}), cuts half-way", SWITCH_COST, False),
         (f"label path (switch cost {SWITCH_COST}), cuts placed (default)", SWITCH_COST, True)]

# The child's peak RSS is sampled from outside (psutil): Linux carries a process's ru_maxrss across
# exec, so a child's own getrusage would include this process's memory at the fork (which has just
# rendered a 10-minute video).
CHILD = """
import sys
sys.argv[0] = "infer.py"
sys.path.insert(0, {repo!r})
import infer
infer.main({argv!r})
"""


def parts(seconds: float, rng: random.Random) -> list[tuple[str, float]]:
    """Shots (class, seconds): scenes of 3-8 s (10-s video) or 5-20 s, each class unlike the one before, each
    scene cut into 1-4 shots of at least 1 s (consecutive shots of one class: one scene)."""
    low, high = (3.0, 8.0) if seconds <= 30 else (5.0, 20.0)
    scenes, total, previous = [], 0.0, None
    while total < seconds - 1e-6:
        length = min(rng.uniform(low, high), seconds - total)
        if scenes and length < low / 2:  # too short a tail: the last scene runs on
            scenes[-1] = (scenes[-1][0], scenes[-1][1] + length)
            break
        label = rng.choice([c for c in CLASSES if c != previous])
        scenes.append((label, length))
        total, previous = total + length, label
    out = []
    for label, length in scenes:
        shots = max(1, min(rng.randint(1, 4), int(length)))
        cuts = sorted(rng.uniform(0, length) for _ in range(shots - 1))
        while any(b - a < 1.0 for a, b in zip([0.0, *cuts], [*cuts, length])):  # no shot under 1 s
            cuts = sorted(rng.uniform(0, length) for _ in range(shots - 1))
        out += [(label, b - a) for a, b in zip([0.0, *cuts], [*cuts, length])]
    return out


def scenes_of(shots: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The truth's shots joined into scenes where consecutive shots share a class."""
    out: list[tuple[float, float, str]] = []
    for start, end, label in shots:
        if out and out[-1][2] == label:
            out[-1] = (out[-1][0], end, label)
        else:
            out.append((start, end, label))
    return out


def run(video: Path, model: str, out: Path, min_segment: float | None) -> tuple[dict, float, float]:
    argv = ["--config", str(REPO / "configs" / "demo.yaml"), "--model", model, "--timeline", "--json",
            "--top-k", str(len(CLASSES)),  # every class's probability in the JSON: the rules below re-read them
            *(["--min-segment", str(min_segment)] if min_segment is not None else []), "--out", str(out), str(video)]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO), argv=argv)], stdout=out_file,
                                 stderr=err_file, text=True, cwd=REPO)
        watched, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:  # it has just exited
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        out_file.seek(0)
        err_file.seek(0)
        if child.returncode != 0:
            sys.exit(f"infer.py --timeline failed on {video}:\n{err_file.read()[-2000:]}")
        return json.loads(out_file.read())[0], seconds, peak / 2**20


def boundary_errors(truth: list[tuple[float, float, str]], segments: list[dict]) -> list[float]:
    """For each scene cut, the distance to the nearest segment boundary."""
    found = [s["start"] for s in segments[1:]]
    return [min((abs(t - f) for f in found), default=float("inf")) for _, t, _ in truth[:-1]]


def wrong_segments(truth: list[tuple[float, float, str]], segments: list[dict]) -> tuple[int, int]:
    """(segments of another class than the scene at their middle inside a scene, such segments at a cut):
    "at a cut" where the segment reaches within NEAR seconds of a scene cut."""
    cuts = [end for _, end, _ in truth[:-1]]
    inside = at_cut = 0
    for s in segments:
        middle = (s["start"] + s["end"]) / 2
        scene = next((label for start, end, label in truth if start <= middle < end), truth[-1][2])
        if s["label"] == scene:
            continue
        if any(s["start"] - NEAR < cut < s["end"] + NEAR for cut in cuts):
            at_cut += 1
        else:
            inside += 1
    return inside, at_cut


def reread(path: Path) -> Timeline:
    """The Timeline infer.py computed, from its JSON (which holds every class's probability here)."""
    saved = json.loads(path.read_text())
    labels = sorted({t["label"] for w in saved["windows"] for t in w["top"]})
    probs = torch.zeros(len(saved["windows"]), len(labels))
    for i, window in enumerate(saved["windows"]):
        for top in window["top"]:
            probs[i, labels.index(top["label"])] = top["score"]
    return Timeline(saved["video"], saved["duration"], saved["window"], saved["stride"],
                    [w["start"] for w in saved["windows"]], probs, labels, saved["fps"])


def measure(seconds: float, seed: int, model: str, out: Path, min_segment: float | None) -> tuple[tuple, list]:
    """One video: its row of the table and its rows per labelling rule."""
    synthetic = load_config(REPO / "configs" / "demo.yaml").data.synthetic
    video = out / f"long_{seconds:.0f}s_seed{seed}.avi"
    shots = write_long_video(video, parts(seconds, random.Random(int(seconds) + seed)), synthetic, seed=seed)
    truth = scenes_of(shots)
    (out / f"truth_{seconds:.0f}s_seed{seed}.json").write_text(json.dumps({"shots": shots, "scenes": truth}) + "\n")
    result, wall, peak_mib = run(video, model, out, min_segment)
    errors = boundary_errors(truth, result["segments"])
    inside, at_cut = wrong_segments(truth, result["segments"])
    row = (f"{seconds:.0f} s, seed {seed}", len(truth), len(shots), result["windows"], wall, peak_mib,
           len(result["segments"]), inside, at_cut, f"{sum(e <= NEAR for e in errors)}/{len(errors)}",
           max(errors, default=0.0), result["min_segment"])
    timeline, rules = reread(Path(result["files"]["json"])), []
    for name, cost, place in RULES:
        segments = [asdict(s) for s in timeline.segments(result["min_segment"], cost, place)]
        errors = boundary_errors(truth, segments)
        rules.append((f"{seconds:.0f} s, seed {seed}", name, sum(e <= NEAR for e in errors), len(errors),
                      max(errors, default=0.0), *wrong_segments(truth, segments)))
    return row, rules


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo", help="a model trained on the demo set (make demo)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1: other scenes, shots and cut times")
    parser.add_argument("--min-segment", type=float, help="passed to infer.py (default: infer.py's own)")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench-timeline"))
    args = parser.parse_args(argv)
    if not (Path(args.model) / "config.json").is_file():
        sys.exit(f"no trained model in {args.model}: run `make demo` first, or pass --model")
    out = Path(args.out)
    rows, rules = [], []
    for seed in range(args.seeds):
        for seconds in (10.0, args.minutes * 60):
            row, by_rule = measure(seconds, seed, args.model, out, args.min_segment)
            rows.append(row)
            rules += by_rule
    chosen = "infer.py's defaults" if args.min_segment is None else f"--min-segment {args.min_segment}"
    print(f"\ninfer.py --timeline, demo model {args.model}, {chosen} (min segment {rows[0][-1]} s), "
          f"switch cost {SWITCH_COST}")
    print("| video | scenes | shots | windows | wall s | peak RSS MiB | segments | another class inside a scene | "
          f"another class at a cut | cuts found within {NEAR} s | largest miss s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, scenes, shots, windows, wall, peak, segments, inside, at_cut, found, miss, _ in rows:
        print(f"| {name} | {scenes} | {shots} | {windows} | {wall:.1f} | {peak:.0f} | {segments} | {inside} | "
              f"{at_cut} | {found} | {miss:.2f} |")
    for seed in range(args.seeds):
        short, long = rows[2 * seed][5], rows[2 * seed + 1][5]
        print(f"seed {seed}: peak RSS, long / short: {long / short:.3f}")
    print("\nthe same windows, labelled by each rule (at the same min segment):")
    print(f"| video | rule | cuts found within {NEAR} s | largest miss s | another class inside a scene | at a cut |")
    print("|---|---|---|---|---|---|")
    for video, name, within, total, worst, inside, at_cut in rules:
        print(f"| {video} | {name} | {within}/{total} | {worst:.2f} | {inside} | {at_cut} |")


if __name__ == "__main__":
    main()
