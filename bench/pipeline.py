"""The stock transformers pipeline on a trained folder, called two ways, beside our 1 clip x 1 crop.

    python bench/pipeline.py --config configs/demo.yaml [--model runs/demo] [--split test]

(a) `pipeline(path)`: how users call it; it spreads num_frames over the whole video.
(b) `pipeline(frames)`: the centre clip's num_frames x sample_rate consecutive frames as a (T, H, W, 3)
    array; the pipeline takes every sample_rate-th, our centre view.
Prints top-1 of each on the split's videos. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from transformers import pipeline  # noqa: E402

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.datasets import ViewDataset  # noqa: E402
from video_classifier.data.decoding import decode_pyav  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.engine.evaluation import stock_pipeline_score  # noqa: E402
from video_classifier.engine.scoring import video_scores  # noqa: E402
from video_classifier.model.modeling import load_trained  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--model", help="trained folder (default: the config's train.output_dir)")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    folder = args.model or config.train.output_dir
    label2id, records = load_prepared(config.data.root)
    records = [r for r in records if r.split == args.split]
    root = Path(config.data.root)
    stride = json.loads((Path(folder) / "config.json").read_text()).get("sample_rate", config.data.sample_rate)
    model, spec = load_trained(folder, stride)
    span = spec.preprocess.num_frames * spec.preprocess.sample_rate
    by_path = stock_pipeline_score(folder, records, root, desc="pipeline, video paths")["pipeline_top1"]
    classify = pipeline("video-classification", model=folder)
    by_clip = 0
    for r in tqdm(records, desc="pipeline, centre clips", unit="video"):
        start = max(0, (r.frames - span) // 2)
        clip = decode_pyav(root / r.path, list(range(start, min(start + span, r.frames)))).permute(0, 2, 3, 1)
        by_clip += classify(clip.numpy(), top_k=1)[0]["label"] == r.label
    views = ViewDataset(records, root, label2id, spec.preprocess, 1, 1, decode_pyav)
    ours = spec.task.predicted(video_scores(model, spec, views, config.eval.batch_size))
    ours_top1 = (ours == torch.tensor([label2id[r.label] for r in records])).float().mean().item()
    print(f"{folder}, {len(records)} {args.split} videos, top-1:")
    print(f"  stock pipeline, video path (whole video)       {by_path:.3f}")
    print(f"  stock pipeline, centre clip's frames as array  {by_clip / len(records):.3f}")
    print(f"  ours, 1 clip x 1 crop                          {ours_top1:.3f}")


if __name__ == "__main__":
    main()
