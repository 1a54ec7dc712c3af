"""Inference latency per video, split into decode, preprocess and model: torch eager vs sdpa attention vs
onnxruntime, for 1 clip x 1 crop and 5 clips x 3 crops.

    python bench/infer.py [--model runs/demo] [--videos 16] [--device cpu|cuda]
    python bench/infer.py --model videomae-base        # VideoMAE-B's shape (16 x 224 px), random weights

Scores --videos test videos of the config's data one at a time (all of a video's views in one batch), as
infer.py does, after one warm-up video. Prints mean milliseconds per video for each part and videos per
second, with the machine. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForVideoClassification  # noqa: E402

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.clips import decode_clip  # noqa: E402
from video_classifier.data.decoding import choose_decoder  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.data.preprocessing import (  # noqa: E402
    MultiCropTransform,
    clip_frame_indices,
    exact_fps,
    spread_clip_starts,
)
from video_classifier.model.model_spec import describe  # noqa: E402
from video_classifier.model.modeling import load_processor  # noqa: E402
from video_classifier.serve.onnx_export import export_onnx, load_onnx  # noqa: E402

VIEWS = ((1, 1), (5, 3))


def videomae_base(folder: Path, labels: dict[str, int]) -> Path:
    """VideoMAE-B's architecture and processor (16 frames, 224 px) with random weights, saved to `folder`."""
    config = transformers.VideoMAEConfig(use_mean_pooling=True, num_labels=len(labels),
                                         id2label={i: k for k, i in labels.items()}, label2id=labels)
    config.sample_rate = 2
    torch.manual_seed(0)
    transformers.VideoMAEForVideoClassification(config).save_pretrained(folder)
    transformers.VideoMAEVideoProcessor(size={"shortest_edge": 224},
                                        crop_size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def measure(model, spec, records, root: Path, decode, clips: int, crops: int, device: str) -> dict[str, float]:
    """Mean seconds per video of decode, preprocess and model, after one warm-up video."""
    transform = MultiCropTransform(spec.preprocess, crops)
    totals = {"decode": 0.0, "preprocess": 0.0, "model": 0.0}
    for n, record in enumerate(records):
        path, fps = root / record.path, exact_fps(record.fps)
        length = spec.preprocess.clip_duration(record.fps)
        start = time.perf_counter()
        raw = [decode_clip(decode, path, clip_frame_indices(s, s + length, fps, record.frames, spec.preprocess.num_frames))
               for s in spread_clip_starts(record.duration, length, clips)]
        decoded = time.perf_counter()
        views = torch.cat([transform(frames) for frames in raw])
        prepared = time.perf_counter()
        with torch.inference_mode():
            spec.task.scores(spec.logits(model, views.to(device))).cpu()
        if device == "cuda":
            torch.cuda.synchronize()
        done = time.perf_counter()
        if n:  # the first video warms up
            totals["decode"] += decoded - start
            totals["preprocess"] += prepared - decoded
            totals["model"] += done - prepared
    return {k: v / (len(records) - 1) for k, v in totals.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--model", default="runs/demo", help="a trained folder, or videomae-base (random weights)")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    prepare(config.data)
    label2id, records = load_prepared(config.data.root)
    records = [r for r in records if r.split == "test"][: args.videos + 1]
    work = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    folder = videomae_base(work / "videomae-base", label2id) if args.model == "videomae-base" else Path(args.model)
    if not (folder / "config.json").is_file():
        sys.exit(f"no trained model in {folder}: run `make demo` first, or pass --model")
    decoding = choose_decoder(config.data.decoder)
    processor = load_processor(str(folder))
    backends = {}
    for attention in ("eager", "sdpa"):
        model = AutoModelForVideoClassification.from_pretrained(folder, attn_implementation=attention).eval()
        backends[f"torch {attention}"] = (model.to(args.device), describe(model, processor, model.config.sample_rate))
    if args.device == "cpu":  # onnxruntime here runs on the CPU
        model, spec = backends["torch sdpa"]
        clip = MultiCropTransform(spec.preprocess, 1)(decode_clip(decoding.decode, Path(config.data.root) / records[0].path,
                                                               list(range(spec.preprocess.num_frames)), records[0].fps))
        export_onnx(model, spec, folder, torch.cat([clip, clip]), work / "onnx", atol=1e-3)
        backends["onnxruntime"] = load_onnx(work / "onnx")
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
          + f"; {decoding.name} decoder; model {args.model}; {len(records) - 1} videos (+1 warm-up)")
    print("\n| backend | views | decode ms | preprocess ms | model ms | total ms per video | videos/s |")
    print("|---|---|---|---|---|---|---|")
    for name, (model, spec) in backends.items():
        for clips, crops in VIEWS:
            t = measure(model, spec, records, Path(config.data.root), decoding.decode, clips, crops,
                        args.device if name.startswith("torch") else "cpu")
            total = sum(t.values())
            print(f"| {name} | {clips}x{crops} | {1000 * t['decode']:.1f} | {1000 * t['preprocess']:.1f} | "
                  f"{1000 * t['model']:.1f} | {1000 * total:.1f} | {1 / total:.1f} |", flush=True)


if __name__ == "__main__":
    main()
