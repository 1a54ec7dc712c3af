"""Inference latency per video, split into decode, preprocess and model: torch eager vs sdpa attention, torch
in bf16 and fp16 (infer.precision, where the hardware has them), torch compiled (infer.compile: fp32, and
bf16 where native) vs onnxruntime in fp32 and int8 (static, calibrated on 8 val clips, and dynamic: export.py
--quantize int8) and OpenVINO (fp32, bf16 where the CPU has it, the dynamic int8 copy: --backend openvino;
OpenVINO's own int8 through NNCF, calibrated on the same 8 val clips and weights only: export.py --quantize
openvino-int8, with its float layers in fp32 and, where native, in bf16 as infer.precision auto runs them),
for 1 clip x 1 crop and
5 clips x 3 crops; each beside torch sdpa fp32, the baseline, measured in the same run; and transformers'
stock pipeline (fp32, given the video's path), what a user would pick, beside the first views' baseline.

    python bench/infer.py [--model runs/demo] [--videos 16] [--views 1x1,5x3] [--device cpu|cuda]
    python bench/infer.py --model videomae-base        # VideoMAE-B's shape (16 x 224 px), random weights

Scores --videos test videos of the config's data one at a time (all of a video's views in one batch), as
infer.py does, after one warm-up video. Prints mean milliseconds per video for each part, videos per second,
the speed-up of the model step over fp32, and how far each path's scores are from fp32's (largest score
difference, videos whose top-1 is the same) and the first video's milliseconds (warm-up; compiling, for a
compiled model), with the machine and its CPU's bf16, fp16 and int8 instruction flags. Asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import transformers  # noqa: E402
from machine import cpu_name, matrix_flags  # noqa: E402  (bench/machine.py)
from transformers import AutoModelForVideoClassification  # noqa: E402

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.core.errors import UserError  # noqa: E402
from video_classifier.data.clips import decode_clip  # noqa: E402
from video_classifier.data.decoding import choose_decoder, decode_pyav, torchcodec_problem  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.data.preprocessing import (  # noqa: E402
    MultiCropTransform,
    clip_frame_indices,
    exact_fps,
    spread_clip_starts,
)
from video_classifier.model.compiling import compile_for_inference  # noqa: E402
from video_classifier.model.model_spec import describe  # noqa: E402
from video_classifier.model.modeling import load_processor  # noqa: E402
from video_classifier.model.precision import DTYPES, choose_precision, cpu_flags, torch_kernels  # noqa: E402
from video_classifier.serve.onnx_export import export_onnx, load_onnx  # noqa: E402
from video_classifier.serve.openvino_backend import OpenVinoModel, quantize_openvino_int8  # noqa: E402
from video_classifier.serve.quantize import quantize_int8  # noqa: E402


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


def measure(model, spec, records, root: Path, decode, clips: int, crops: int,
            device: str) -> tuple[dict[str, float], torch.Tensor]:
    """Mean seconds per video of decode, preprocess and model, after one warm-up video; each video's scores."""
    transform = MultiCropTransform(spec.preprocess, crops)
    totals = {"decode": 0.0, "preprocess": 0.0, "model": 0.0}
    first = 0.0
    scores = []
    for n, record in enumerate(records):
        path, fps = root / record.path, exact_fps(record.fps)
        length = spec.preprocess.clip_duration(record.fps)
        start = time.perf_counter()
        raw = [decode_clip(decode, path, clip_frame_indices(s, s + length, fps, record.frames, spec.preprocess.num_frames),
                           record.fps)
               for s in spread_clip_starts(record.duration, length, clips)]
        decoded = time.perf_counter()
        views = torch.cat([transform(frames) for frames in raw])
        prepared = time.perf_counter()
        with torch.inference_mode():
            scores.append(spec.task.scores(spec.logits(model, views.to(device))).mean(0).cpu())
        if device == "cuda":
            torch.cuda.synchronize()
        done = time.perf_counter()
        if n:  # the first video warms up (and compiles, where the model is compiled)
            totals["decode"] += decoded - start
            totals["preprocess"] += prepared - decoded
            totals["model"] += done - prepared
        else:
            first = done - start
    return {**{k: v / (len(records) - 1) for k, v in totals.items()}, "first": first}, torch.stack(scores)


def measure_pipeline(folder: Path, records, root: Path, label2id: dict[str, int],
                     device: str) -> tuple[float, torch.Tensor]:
    """Mean seconds per video of transformers' stock pipeline, called as its users call it, after one warm-up
    video: `pipeline("video-classification", model=folder)(path)` (its own decode and frame sampling over
    the whole video; every frame decoded by PyAV and handed over where torchcodec does not load); the
    scores of every class per video."""
    classify = transformers.pipeline("video-classification", model=str(folder), device=device)
    by_path = torchcodec_problem() is None
    total, scores = 0.0, []
    for n, record in enumerate(records):
        start = time.perf_counter()
        video = str(root / record.path) if by_path else \
            decode_pyav(root / record.path, list(range(record.frames)), record.fps).permute(0, 2, 3, 1).numpy()
        row = torch.zeros(len(label2id))
        for result in classify(video, top_k=len(label2id)):
            row[label2id[result["label"]]] = result["score"]
        scores.append(row)
        if n:
            total += time.perf_counter() - start
    return total / (len(records) - 1), torch.stack(scores)


def low_precisions(device: str) -> list[str]:
    """bf16 and fp16 where this machine multiplies them natively (infer.precision refuses them elsewhere)."""
    kept = []
    for name in ("bf16", "fp16"):
        try:
            choose_precision(name, device, cpu_flags(), device == "cuda" and torch.cuda.is_bf16_supported(),
                             kernels=torch_kernels())
            kept.append(name)
        except UserError:
            pass
    return kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--model", default="runs/demo", help="a trained folder, or videomae-base (random weights)")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--views", default="1x1,5x3", help="clips x crops per video, comma-separated")
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
    for name in low_precisions(args.device):  # infer.precision: autocast over the sdpa model
        model, spec = backends["torch sdpa"]
        backends[f"torch sdpa {name}"] = (model, dataclasses.replace(spec, autocast=DTYPES[name]))
    for name in ["fp32"] + [n for n in low_precisions(args.device) if n == "bf16"]:  # infer.compile: true
        model = AutoModelForVideoClassification.from_pretrained(folder, attn_implementation="sdpa").eval()
        spec = dataclasses.replace(backends["torch sdpa"][1], autocast=DTYPES[name])
        backends[f"torch sdpa {name} compiled"] = (compile_for_inference(model.to(args.device), True), spec)
    if args.device == "cpu":  # onnxruntime here runs on the CPU
        model, spec = backends["torch sdpa"]

        def first_clip(record: Any) -> torch.Tensor:
            return MultiCropTransform(spec.preprocess, 1)(decode_clip(
                decoding.decode, Path(config.data.root) / record.path, list(range(spec.preprocess.num_frames)),
                record.fps))

        clip = first_clip(records[0])
        export_onnx(model, spec, folder, torch.cat([clip, clip]), work / "onnx", atol=1e-3)
        backends["onnxruntime"] = load_onnx(work / "onnx")
        val = [r for r in load_prepared(config.data.root)[1] if r.split == "val"][:8]
        calibration = spec.pixels(torch.cat([first_clip(r) for r in val])).numpy()
        for method, clips in (("dynamic", None), ("static", calibration)):  # export.py --quantize int8
            quantize_int8(work / "onnx", work / f"onnx-int8-{method}", spec.input_key, clips)
            backends[f"onnxruntime int8 {method}"] = load_onnx(work / f"onnx-int8-{method}")
        onnx_spec = backends["onnxruntime"][1]
        for name in ["fp32"] + [n for n in low_precisions("cpu") if n == "bf16"]:  # --backend openvino
            backends[f"openvino {name}"] = (OpenVinoModel(work / "onnx", name), onnx_spec)
        backends["openvino int8 dynamic"] = (OpenVinoModel(work / "onnx-int8-dynamic", "fp32"), onnx_spec)
        for method, clips in (("weights", None), ("static", calibration)):  # export.py --quantize openvino-int8
            quantize_openvino_int8(work / "onnx", work / f"openvino-int8-{method}", clips)
            for name in ["fp32"] + [n for n in low_precisions("cpu") if n == "bf16"]:  # bf16: what auto runs there
                backends[f"openvino int8 NNCF {method}" + (", bf16 elsewhere" if name == "bf16" else "")] = (
                    OpenVinoModel(work / f"openvino-int8-{method}", name), onnx_spec)
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {os.cpu_count()} cores, {cpu_name()}, low-precision flags: {matrix_flags()}, "
          f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
          + f"; {decoding.name} decoder; model {args.model}; {len(records) - 1} videos (+1 warm-up)")
    print("\n| backend | views | decode ms | preprocess ms | model ms | total ms per video | videos/s "
          "| model step vs sdpa fp32 | max score diff vs fp32 | top-1 same | first video ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    views = [tuple(int(n) for n in v.split("x")) for v in args.views.split(",")]
    for clips, crops in views:
        baseline = None
        for name in ["torch sdpa"] + [n for n in backends if n != "torch sdpa"]:  # the baseline first
            model, spec = backends[name]
            t, scores = measure(model, spec, records, Path(config.data.root), decoding.decode, clips, crops,
                                args.device if name.startswith("torch") else "cpu")
            baseline = baseline or (t, scores)
            total = t["decode"] + t["preprocess"] + t["model"]
            same = (scores.argmax(1) == baseline[1].argmax(1)).sum().item()
            print(f"| {name} | {clips}x{crops} | {1000 * t['decode']:.1f} | {1000 * t['preprocess']:.1f} | "
                  f"{1000 * t['model']:.1f} | {1000 * total:.1f} | {1 / total:.2f} | "
                  f"{baseline[0]['model'] / t['model']:.2f}x | {(scores - baseline[1]).abs().max().item():.4f} | "
                  f"{same}/{len(scores)} | {1000 * t['first']:.0f} |", flush=True)
        if (clips, crops) == views[0]:  # what a user would pick: the stock pipeline, fp32, beside the baseline
            seconds, scores = measure_pipeline(folder, records, Path(config.data.root), label2id, args.device)
            same = (scores.argmax(1) == baseline[1].argmax(1)).sum().item()
            base_total = baseline[0]["decode"] + baseline[0]["preprocess"] + baseline[0]["model"]
            print(f"| stock pipeline(path), fp32 | its {spec.preprocess.num_frames} frames over the whole video | - | - "
                  f"| - | {1000 * seconds:.1f} | {1 / seconds:.2f} | {base_total / seconds:.2f}x "
                  f"(whole video vs sdpa fp32's) | {(scores - baseline[1]).abs().max().item():.4f} | "
                  f"{same}/{len(scores)} | - |", flush=True)


if __name__ == "__main__":
    main()
