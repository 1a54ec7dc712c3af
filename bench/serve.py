"""Serving at VideoMAE-B's shape on this machine: the page's answer for a 10-second video (5 clips x 3 crops)
and the timeline's real-time factor, in fp32 (the baseline) and in the precision `infer.precision: auto`
picks, measured in the same run.

    python bench/serve.py [--seconds 10] [--timeline-seconds 60] [--backends torch,openvino,openvino-int8]

VideoMAE-B's architecture and processor (16 frames x 224 px, stride 4: 2.56 s clips) with random weights
(nothing is downloaded), 10 classes; videos from the demo's generator at UCF101's shape (320 x 240, 25 fps).
Page: `web.answer` on the 10-second video, as the page calls it per upload, timed on a first call (the
model loaded, nothing warm) and on a second. Timeline: `infer.py --timeline`'s predict_timeline on a
--timeline-seconds video at its defaults (a window every 1.28 s); real-time factor = video seconds / wall
seconds (above 1: faster than real time). OpenVINO rows read the export.py folder of the same weights
(openvino-int8: its NNCF int8 copy, whose float layers run in the precision chosen).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import transformers  # noqa: E402
from machine import cpu_name, matrix_flags  # noqa: E402  (bench/machine.py)

from video_classifier.core.config import SyntheticConfig, load_config  # noqa: E402
from video_classifier.data.synthetic import CLASSES, write_long_video  # noqa: E402
from video_classifier.serve.inference import predict_timeline  # noqa: E402
from video_classifier.serve.web import answer, load_demo  # noqa: E402

UCF_SHAPE = SyntheticConfig(width=320, height=240, fps=25, seconds=10.0, seed=0)


def videomae_base(folder: Path) -> Path:
    """VideoMAE-B (16 frames, 224 px, trained stride 4) with random weights and its processor, saved."""
    labels = {name: i for i, name in enumerate(CLASSES + ["Still", "Other"])}
    config = transformers.VideoMAEConfig(use_mean_pooling=True, num_labels=len(labels), label2id=labels,
                                         id2label={i: k for k, i in labels.items()})
    config.sample_rate = 4
    torch.manual_seed(0)
    transformers.VideoMAEForVideoClassification(config).save_pretrained(folder)
    transformers.VideoMAEVideoProcessor(size={"shortest_edge": 224},
                                        crop_size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def export(folder: Path, config_path: Path, out: Path, int8: bool = False) -> Path:
    """export.py's folder of `folder`'s weights; `int8`: its NNCF int8 copy (export.py --quantize openvino-int8,
    calibrated on 8 val clips; no agreement asked of random weights, whose top-1 is a coin toss)."""
    import export as export_script

    quantize = ["--quantize", "openvino-int8", "--calibrate", "8", "--min-agreement", "0"] if int8 else []
    export_script.main(["--config", str(config_path), "--model", str(folder), "--out", str(out), "--clips", "2",
                        *quantize])
    return out.with_name(out.name + "-openvino-int8") if int8 else out


def measure(model: str, config_path: Path, precision: str, backend: str, page_video: Path, long_video: Path,
            work: Path) -> dict[str, float]:
    config = load_config(config_path, [f"infer.precision={precision}"])
    demo = load_demo(model, config, backend)
    seconds = {}
    for call in ("first", "second"):
        start = time.perf_counter()
        got = answer(demo, str(page_video), work / "page")
        seconds[f"page {call} s"] = time.perf_counter() - start
        if got.status.startswith("error"):
            sys.exit(got.status)
    start = time.perf_counter()
    (result,) = predict_timeline(model, [str(long_video)], config, 3, None, None, work / "timeline", backend)
    wall = time.perf_counter() - start
    seconds["timeline windows"] = result["windows"]
    seconds["timeline wall s"] = wall
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="the page's video")
    parser.add_argument("--timeline-seconds", type=float, default=60.0, help="the timeline's video")
    parser.add_argument("--backends", default="torch",
                        help="torch, openvino and/or openvino-int8 (NNCF's int8 export), comma-separated")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    folder = videomae_base(work / "videomae-base")
    config_path = work / "config.yaml"
    config_path.write_text((REPO / "configs" / "demo.yaml").read_text().replace("sample_rate: 2", "sample_rate: 4"))
    page_video, long_video = work / "page.avi", work / "long.avi"
    write_long_video(page_video, [(CLASSES[0], args.seconds)], UCF_SHAPE)
    scenes = [(CLASSES[k % len(CLASSES)], 10.0) for k in range(int(args.timeline_seconds // 10))]
    write_long_video(long_video, scenes, UCF_SHAPE)
    models = {"torch": str(folder)}
    if "openvino" in args.backends.split(","):
        models["openvino"] = str(export(folder, config_path, work / "onnx"))
    if "openvino-int8" in args.backends:
        models["openvino-int8"] = str(export(folder, config_path, work / "onnx-q", int8=True))
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {os.cpu_count()} cores, {cpu_name()}, low-precision flags: {matrix_flags()}; VideoMAE-B shape, "
          f"random weights; page video {args.seconds:g} s (5 clips x 3 crops), timeline video {args.timeline_seconds:g} s")
    print("\n| backend | infer.precision | page, first call s | page, second call s | timeline windows | timeline wall s "
          "| real-time factor | page vs fp32 |")
    print("|---|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        baseline = None
        for precision in ("fp32", "auto"):
            t = measure(models[backend], config_path, precision, backend.removesuffix("-int8"), page_video,
                        long_video, work)
            baseline = baseline or t
            print(f"| {backend} | {precision} | {t['page first s']:.1f} | {t['page second s']:.1f} | "
                  f"{t['timeline windows']:.0f} | {t['timeline wall s']:.1f} | "
                  f"{args.timeline_seconds / t['timeline wall s']:.2f} | "
                  f"{baseline['page second s'] / t['page second s']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
