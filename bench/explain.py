"""infer.py --explain's maps against where the evidence really is: the multi-label set's moving square.

    python bench/explain.py [--seeds 3] [--model runs/multilabel] [--groups 2] [--base [METHOD,...]] [--hard runs/hard]

Per seed, new multi-label videos are drawn (configs/multilabel.yaml's generator at seed 1000 + s, every
combination with a moving square, --groups of each), written as the generator writes them, and each of the
square's labels (ObjectUp ...) is explained by each method, with --model (make demo-multilabel) and with an
untrained control (model.checkpoint's random backbone and a new head), which must score at chance:

- pointing game: the map's maximum inside the square's box in its frame (serve/explain_metrics.py);
  chance: the box's share of the part of the frame the model sees (its centre crop);
- mass inside: the share of the map inside the box;
- deletion: the label's score as the model's token cells are hidden (the mean colour), most important
  first, area under the curve, against a random order (3 draws): below it is better.

With --hard, the hard set's test videos (data/hard): the share of the map's mass over time inside the
seconds the camera pans, for each video's true label, against the share of its frames there.

Seconds per video for each method at the demo's size; with --base, also at VideoMAE-B's shape (random
weights, 16 x 224 px, one 2.56-s window, times 3 for a 10-s video: the timeline's back-to-back windows).
Asserts nothing; prints a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import cpu_name  # noqa: E402
from video_classifier.core.config import SyntheticConfig, load_config  # noqa: E402
from video_classifier.core.task import split_labels  # noqa: E402
from video_classifier.data import synthetic  # noqa: E402
from video_classifier.data.decoding import choose_decoder  # noqa: E402
from video_classifier.model.model_spec import describe  # noqa: E402
from video_classifier.model.modeling import ensure_tiny_checkpoint, load_for_training, load_processor, load_trained  # noqa: E402
from video_classifier.serve import explain_metrics as metrics  # noqa: E402
from video_classifier.serve.explain import (  # noqa: E402
    METHODS,
    explain,
    token_size,
    uncropped,
    window_maps,
    window_scores,
    windows_of,
)

RANDOM_ORDERS = 3


def videos(config, seed: int, groups: int, folder: Path) -> list[tuple[Path, list[str], list]]:
    """(path, labels, the square's box per frame) of new videos with a moving square."""
    drawn = replace(config.data.synthetic, seed=1000 + seed)
    out = []
    for combination in synthetic.COMBINATIONS:
        if "Object" not in combination:
            continue
        for group in range(1, groups + 1):
            spec = synthetic.VideoSpec("test", combination, group, 1)
            frames, _, boxes = synthetic.render_with_truth(spec, drawn)
            path = folder / f"{combination}_{group}.avi"
            synthetic.write_video(frames, path, drawn.fps, drawn.bits_per_pixel)
            out.append((path, split_labels(spec.labels), boxes))
    return out


def control_model(config, label2id: dict[str, int]):
    """model.checkpoint's random backbone with a new head: a model that has learnt nothing."""
    ensure_tiny_checkpoint(config.model, config.train.seed, quiet=True)
    torch.manual_seed(0)
    model = load_for_training(config.model.checkpoint, label2id).eval()
    return model, describe(model, load_processor(config.model.checkpoint), config.data.sample_rate)


def deletion(model, spec, pixels: torch.Tensor, maps: np.ndarray, target: int, rng: np.random.Generator
             ) -> tuple[float, float]:
    """Areas under the deletion curve of each window, averaged: by the map's order and by random orders."""
    cell = token_size(model, *pixels.shape[2:])

    def score(hidden: torch.Tensor) -> float:
        return float(window_scores(model, spec, hidden[None])[0, target])

    ours, chance = [], []
    for window, window_map in zip(pixels, maps):
        ours.append(metrics.area(metrics.deletion_curve(score, window, metrics.cell_ranking(window_map, cell), cell)))
        chance.append(np.mean([metrics.area(metrics.deletion_curve(
            score, window, metrics.cell_ranking(window_map, cell, rng), cell)) for _ in range(RANDOM_ORDERS)]))
    return float(np.mean(ours)), float(np.mean(chance))


def measure(model, spec, clips: list, method: str, decoding, rng: np.random.Generator) -> dict[str, float]:
    ids = {label: i for i, label in spec.id2label.items()}
    hits, masses, chances, ours, randoms, seconds = [], [], [], [], [], []
    for path, labels, boxes in clips:
        for label in (lab for lab in labels if lab.startswith("Object")):
            start = time.perf_counter()
            found = explain(model, spec, path, decoding, method, label)
            seconds.append(time.perf_counter() - start)
            shown = [boxes[f] for f in found.frames]
            seen = uncropped(np.ones((1, *spec.preprocess.crop_size), dtype=np.float32), spec, found.maps.shape[1:])[0]
            hits.append(metrics.pointing_hit(found.maps, shown))
            masses.append(metrics.mass_inside(found.maps, shown))
            chances.append(metrics.box_share(shown, found.maps.shape, seen > 0.5))
            windows = windows_of(spec, path, decoding)
            scores = window_scores(model, spec, windows.pixels)[:, ids[label]]
            maps = window_maps(model, spec, windows.pixels, ids[label], method, scores)
            area, chance = deletion(model, spec, windows.pixels, maps, ids[label], rng)
            ours.append(area)
            randoms.append(chance)
    return {"pointing": float(np.mean(hits)), "chance": float(np.mean(chances)), "mass": float(np.mean(masses)),
            "deletion": float(np.mean(ours)), "random": float(np.mean(randoms)), "s": float(np.median(seconds)),
            "n": len(hits)}


def when(model, spec, method: str, config, decoding) -> dict[str, float]:
    """The hard set's test videos (data/hard): the share of the map's temporal curve inside the seconds the
    camera pans (the generator's motion window), for each video's true label; chance: the share of the
    sampled frames inside it."""
    shares, chances = [], []
    for video in (v for v in synthetic.plan(config.data.synthetic) if v.split == "test"):
        start, end = synthetic.motion_window(video, config.data.synthetic)
        found = explain(model, spec, Path(config.data.root) / video.relpath, decoding, method, video.label)
        shares.append(metrics.time_share(found.times, found.curve, (start, end)))
        chances.append(metrics.time_share(found.times, np.ones_like(found.curve), (start, end)))
    return {"inside": float(np.mean(shares)), "chance": float(np.mean(chances)), "n": len(shares)}


def base_shape_seconds(folder: Path, methods: list[str]) -> dict[str, float]:
    """Seconds of each method on one 2.56-s window at VideoMAE-B's shape (random weights), x3 per 10-s video."""
    import transformers

    model = transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(
        num_labels=8, id2label={i: f"c{i}" for i in range(8)}, label2id={f"c{i}": i for i in range(8)},
        use_mean_pooling=True)).eval()
    processor = transformers.VideoMAEVideoProcessor()
    spec = describe(model, processor, 4)
    drawn = SyntheticConfig(width=320, height=240, fps=25, seconds=2.56)
    path = folder / "base.avi"
    synthetic.write_video(synthetic.render(synthetic.VideoSpec("test", "PanLeft", 1, 1), drawn), path, 25, 1.0)
    out = {}
    for method in methods:
        start = time.perf_counter()
        explain(model, spec, path, choose_decoder("pyav"), method, "c0")
        out[method] = (time.perf_counter() - start) * 3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", default="runs/multilabel")
    parser.add_argument("--groups", type=int, default=2, help="videos of each combination with a moving square")
    parser.add_argument("--base", nargs="?", const=",".join(METHODS), metavar="METHOD,...",
                        help="also time these methods (default all) at VideoMAE-B's shape")
    parser.add_argument("--hard", metavar="RUN", help="also the hard set's motion interval, with this run of "
                        "configs/hard.yaml (train.py --config configs/hard.yaml)")
    args = parser.parse_args()
    config = load_config(REPO / "configs" / "multilabel.yaml")
    trained = load_trained(str(REPO / args.model))
    control = control_model(config, trained[0].config.label2id)
    decoding = choose_decoder(config.data.decoder)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            folder = Path(tmp) / f"seed{seed}"
            folder.mkdir()
            clips = videos(config, seed, args.groups, folder)
            for name, (model, spec) in ((args.model, trained), ("untrained control", control)):
                for method in METHODS:
                    rows.append((seed, name, method, measure(model, spec, clips, method, decoding,
                                                             np.random.default_rng(seed))))
        base = base_shape_seconds(Path(tmp), args.base.split(",")) if args.base else None
    hard = []
    if args.hard:
        hard_config = load_config(REPO / "configs" / "hard.yaml")
        hard_run = load_trained(str(REPO / args.hard))
        # the control: the random tiny backbone (configs/multilabel.yaml's checkpoint), not configs/hard.yaml's,
        # which was pretrained on motion
        hard_models = ((args.hard, hard_run), ("untrained control", control_model(config, hard_run[0].config.label2id)))
        hard = [(name, method, when(model, spec, method, hard_config, decoding))
                for name, (model, spec) in hard_models for method in METHODS]
    print(f"\nmaps of the square's labels on new multi-label videos ({cpu_name()})\n")
    head = ("| seed | model | method | labels explained | pointing game | chance | mass inside | "
            "deletion AUC | random order AUC | s per video |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for seed, name, method, m in rows:
        print(f"| {seed} | {name} | {method} | {m['n']} | {m['pointing']:.2f} | {m['chance']:.2f} | "
              f"{m['mass']:.2f} | {m['deletion']:.3f} | {m['random']:.3f} | {m['s']:.2f} |")
    if hard:
        print("\nthe hard set's test videos: the share of the temporal curve inside the seconds the camera pans\n")
        print("| model | method | videos | share inside | chance |\n|---|---|---|---|---|")
        for name, method, m in hard:
            print(f"| {name} | {method} | {m['n']} | {m['inside']:.2f} | {m['chance']:.2f} |")
    if base:
        print("\nVideoMAE-B's shape (random weights, 16 x 224 px), seconds per 10-s video (3 windows): "
              + ", ".join(f"{method} {s:.0f} s" for method, s in base.items()))


if __name__ == "__main__":
    main()
