"""infer.py on many videos: decoding in worker processes while the model runs (predict_manual's default for
more than one video) against decoding in the main process between model steps (the baseline), in one run.

    python bench/predict.py [--model runs/demo] [--config configs/demo.yaml] [--videos 64] [--workers 0,1,2]

Scores the config's first --videos test videos from config.eval's views (5 clips x 3 crops for the demo) once
per worker count, after a warm-up, checks every count gives the baseline's scores exactly, and prints a table
of wall time, videos per second and the speed-up. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from machine import cpu_name  # noqa: E402  (bench/machine.py)

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.serve.inference import load_model, predict_manual  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo")
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--workers", default="0,1,2", help="decoding processes to compare; the first is the baseline")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    root = Path(config.data.root)
    videos = [root / r.path for r in load_prepared(root)[1] if r.split == "test"][: args.videos]
    model, spec = load_model(args.model, config, "torch")
    predict_manual(model, spec, videos[:2], config, 1, 0)  # warm-up
    rows, baseline = [], None
    for workers in (int(w) for w in args.workers.split(",")):
        began = time.perf_counter()
        answers = predict_manual(model, spec, videos, config, len(spec.id2label), workers)
        seconds = time.perf_counter() - began
        scores = [dict(zip(a.labels, a.scores)) for a in answers]
        baseline = baseline or (seconds, scores)
        rows.append((workers, seconds, scores == baseline[1]))
    print(f"\n{len(videos)} test videos of {args.config}, {config.eval.num_clips} clips x {config.eval.num_crops} "
          f"crops each, {args.model}; {cpu_name()}, {torch.get_num_threads()} torch threads\n")
    print("| decoding processes | seconds | videos/s | vs baseline | scores equal to the baseline's |")
    print("|---|---|---|---|---|")
    for workers, seconds, same in rows:
        print(f"| {workers}{' (baseline: decode between model steps)' if workers == rows[0][0] else ''} | "
              f"{seconds:.1f} | {len(videos) / seconds:.1f} | {baseline[0] / seconds:.2f}x | {same} |")


if __name__ == "__main__":
    main()
