"""infer.py --timeline on long generated videos: segment boundaries against the truth, and peak memory
flat in the video's length.

    python bench/timeline.py [--model runs/demo] [--minutes 10] [--min-segment 1.0] [--seed 0]

Makes a 10-second and a --minutes video from the demo's generator, the camera's pan changing direction
(a new scene each time) at known times, and runs `infer.py --timeline` on each in a fresh process that
is watched for its peak RSS. Prints, per video: windows, wall time, peak RSS, and how many true boundaries
have a segment boundary within one stride (and the largest miss). Needs the demo model (`make demo`).
Asserts nothing.
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
    """Scenes of 3-8 s (10-s video) or 20-60 s, each class unlike the one before."""
    low, high = (3.0, 8.0) if seconds <= 30 else (20.0, 60.0)
    out, total, previous = [], 0.0, None
    while total < seconds - 1e-6:
        length = min(rng.uniform(low, high), seconds - total)
        if out and length < low / 2:  # too short a tail: the last scene runs on
            out[-1] = (out[-1][0], out[-1][1] + length)
            break
        label = rng.choice([c for c in CLASSES if c != previous])
        out.append((label, length))
        total, previous = total + length, label
    return out


def run(video: Path, model: str, out: Path, min_segment: float) -> tuple[dict, float, float]:
    argv = ["--config", str(REPO / "configs" / "demo.yaml"), "--model", model, "--timeline", "--json",
            "--top-k", str(len(CLASSES)),  # every class's probability in the JSON: the rules below re-read them
            "--min-segment", str(min_segment), "--out", str(out), str(video)]
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
    """For each true boundary, the distance to the nearest segment boundary."""
    found = [s["start"] for s in segments[1:]]
    return [min((abs(t - f) for f in found), default=float("inf")) for _, t, _ in truth[:-1]]


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo", help="a model trained on the demo set (make demo)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--min-segment", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0, help="another seed: other scenes and cut times")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench-timeline"))
    args = parser.parse_args(argv)
    if not (Path(args.model) / "config.json").is_file():
        sys.exit(f"no trained model in {args.model}: run `make demo` first, or pass --model")
    synthetic = load_config(REPO / "configs" / "demo.yaml").data.synthetic
    out = Path(args.out)
    rows, rules = [], []
    for seconds in (10.0, args.minutes * 60):
        video = out / f"long_{seconds:.0f}s.avi"
        truth = write_long_video(video, parts(seconds, random.Random(int(seconds) + args.seed)), synthetic)
        result, wall, peak_mib = run(video, args.model, out, args.min_segment)
        errors = boundary_errors(truth, result["segments"])
        within = sum(e <= result["stride"] for e in errors)
        rows.append((f"{seconds:.0f} s, {len(truth)} scenes", result["windows"], wall, peak_mib,
                     f"{within}/{len(errors)}", max(errors, default=0.0), len(result["segments"])))
        (out / f"truth_{seconds:.0f}s.json").write_text(json.dumps(truth, indent=1) + "\n")
        timeline = reread(Path(result["files"]["json"]))
        for name, cost, place in RULES:
            errors = boundary_errors(truth, [asdict(s) for s in timeline.segments(args.min_segment, cost, place)])
            rules.append((f"{seconds:.0f} s", name, sum(e <= result["stride"] for e in errors), len(errors),
                          max(errors, default=0.0), sum(errors) / max(len(errors), 1)))
    print(f"\ninfer.py --timeline, demo model {args.model}, stride {result['stride']:.2f} s, "
          f"--min-segment {args.min_segment}, seed {args.seed}")
    print("| video | windows | wall s | peak RSS MiB | true boundaries within one stride | largest miss s | segments |")
    print("|---|---|---|---|---|---|---|")
    for name, windows, wall, peak, within, miss, segments in rows:
        print(f"| {name} | {windows} | {wall:.1f} | {peak:.0f} | {within} | {miss:.2f} | {segments} |")
    print(f"peak RSS, long / short: {rows[1][3] / rows[0][3]:.3f}")
    print("\nthe same windows, labelled by each rule:")
    print("| video | rule | true boundaries within one stride | largest miss s | mean miss s |")
    print("|---|---|---|---|---|")
    for video, name, within, total, worst, mean in rules:
        print(f"| {video} | {name} | {within}/{total} | {worst:.2f} | {mean:.2f} |")


if __name__ == "__main__":
    main()
