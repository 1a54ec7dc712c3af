"""Accuracy kept by every precision and backend a trained model can be served in, on the hard set.

    python bench/precisions.py [--seeds 3] [--steps 300] [--clips 5] [--crops 3]

For each seed: fine-tune the hard set's model as bench/accuracy.py does (configs/hard.yaml, from the pretrained
tiny checkpoint it makes once), export it (export.py's functions: ONNX fp32, onnxruntime int8 dynamic and
static, OpenVINO's NNCF int8 static and weights only, static ones calibrated on 32 val clips) and score the 64
test videos from --clips x --crops views through: torch fp32 (the baseline), torch bf16 and fp16 (autocast;
emulated, and slow, where the CPU lacks the units), onnxruntime fp32 and both int8 copies, OpenVINO fp32,
bf16 (where the CPU has it) and both NNCF copies (their float layers in fp32 and, where the CPU has bf16,
in bf16 as infer.precision auto runs them). Each seed runs in a process of its own (one process
exporting and quantizing a second model has crashed in native code). Prints each path's top-1 and the share
of videos (and of single views) whose top-1 equals torch fp32's, mean and spread (sample standard deviation)
over seeds, with the CPU. The calibrated copies (onnxruntime static, NNCF static) are scored twice: their
classifier in float (export.py's) and in int8; NNCF's also with accuracy control (export.py
--accuracy-control: layers back in float until 99% of the val videos' 5 x 3 views keep their top-1). Asserts
nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from accuracy import CONFIG, PRETRAINED, pretrained, run_one  # noqa: E402  (bench/accuracy.py)
from machine import cpu_name, matrix_flags  # noqa: E402

from export import centre_clips, video_views  # noqa: E402  (export.py)
from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.datasets import ViewDataset  # noqa: E402
from video_classifier.data.decoding import choose_decoder  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.engine.scoring import video_scores  # noqa: E402
from video_classifier.model.modeling import load_trained  # noqa: E402
from video_classifier.model.precision import DTYPES, choose_precision, cpu_flags  # noqa: E402
from video_classifier.serve.onnx_export import export_onnx, load_onnx  # noqa: E402
from video_classifier.serve.openvino_backend import OpenVinoModel, Validation, quantize_openvino_int8  # noqa: E402
from video_classifier.serve.quantize import predictions, quantize_int8  # noqa: E402

CALIBRATION = 32  # val clips, as export.py's default


def paths(folder: Path, work: Path, config) -> dict:
    """name -> (model, spec) for every way to serve the trained model in `folder`."""
    model, spec = load_trained(str(folder), config.data.sample_rate)
    out = {"torch fp32": (model, spec)}
    for name in ("bf16", "fp16"):
        out[f"torch {name}"] = (model, dataclasses.replace(spec, autocast=DTYPES[name]))
    clips = centre_clips(config, spec, "val", CALIBRATION)  # export.py's calibration clips
    export_onnx(model, spec, folder, clips[:2], work / "onnx", atol=1e-3)
    onnx_spec = load_onnx(work / "onnx")[1]
    out["onnxruntime fp32"] = load_onnx(work / "onnx")
    calibration = spec.pixels(clips).numpy()
    for method, data in (("dynamic", None), ("static", calibration)):
        quantize_int8(work / "onnx", work / f"int8-{method}", spec.input_key, data)
        out[f"onnxruntime int8 {method}"] = load_onnx(work / f"int8-{method}")
    quantize_int8(work / "onnx", work / "int8-static-head", spec.input_key, calibration, float_head=False)
    out["onnxruntime int8 static, classifier in int8 too"] = load_onnx(work / "int8-static-head")
    out["openvino fp32"] = (OpenVinoModel(work / "onnx", "fp32"), onnx_spec)
    native_bf16 = choose_precision("auto", "cpu", cpu_flags()).name == "bf16"
    if native_bf16:
        out["openvino bf16"] = (OpenVinoModel(work / "onnx", "bf16"), onnx_spec)
    for method, data in (("NNCF static", calibration), ("NNCF weights", None)):
        target = work / f"openvino-{method.split()[1]}"
        quantize_openvino_int8(work / "onnx", target, data)
        out[f"openvino int8 {method}"] = (OpenVinoModel(target, "fp32"), onnx_spec)
        if native_bf16:  # its float layers in bf16, as infer.precision auto runs it on such a CPU
            out[f"openvino int8 {method}, bf16 elsewhere"] = (OpenVinoModel(target, "bf16"), onnx_spec)
    views = video_views(config, spec, "val", CALIBRATION, config.eval.num_clips, config.eval.num_crops)
    control = Validation(spec.pixels(views).numpy(), partial(predictions, spec.task), 0.01)
    quantize_openvino_int8(work / "onnx", work / "openvino-int8-control", calibration, validation=control)
    out["openvino int8 NNCF static, accuracy control (99% of val views)"] = (
        OpenVinoModel(work / "openvino-int8-control", "fp32"), onnx_spec)
    quantize_openvino_int8(work / "onnx", work / "openvino-int8-head", calibration, float_head=False)
    out["openvino int8 NNCF static, classifier in int8 too"] = (OpenVinoModel(work / "openvino-int8-head", "fp32"),
                                                                onnx_spec)
    return out


def measure_seed(seed: int, steps: int, clips: int, crops: int, root: Path) -> dict[str, dict[str, float]]:
    folder = root / f"seed{seed}"
    run_one([], seed, steps, folder)
    config = load_config(CONFIG)
    label2id, records = load_prepared(config.data.root)
    test = [r for r in records if r.split == "test"]
    labels = torch.tensor([label2id[r.label] for r in test])
    results, baseline = {}, None
    for name, (model, spec) in paths(folder, root / f"seed{seed}-export", config).items():
        views = ViewDataset(test, config.data.root, label2id, spec.preprocess, clips, crops,
                            choose_decoder(config.data.decoder).decode)
        each = video_scores(model, spec, views, config.eval.batch_size, per_view=True)  # (videos, views, classes)
        top, view_top = each.mean(1).argmax(1), each.argmax(2)
        baseline = (top, view_top) if baseline is None else baseline
        results[name] = {"top1": float((top == labels).float().mean()),
                         "agreement": float((top == baseline[0]).float().mean()),
                         "view agreement": float((view_top == baseline[1]).float().mean())}
        print(f"seed {seed}: {name}: top-1 {results[name]['top1']:.3f}, same top-1 as fp32 "
              f"{results[name]['agreement']:.1%} of videos, {results[name]['view agreement']:.1%} of views",
              file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--crops", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "runs" / "bench-precisions"))
    parser.add_argument("--one-seed", type=int, help=argparse.SUPPRESS)  # the child process of one seed
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.one_seed is not None:
        result = measure_seed(args.one_seed, args.steps, args.clips, args.crops, out)
        (out / f"seed{args.one_seed}.json").write_text(json.dumps(result, indent=1))
        return
    config = load_config(CONFIG)
    prepare(config.data)
    pretrained(Path(config.model.checkpoint), PRETRAINED[config.model.checkpoint])
    runs = []
    for seed in range(args.seeds):
        subprocess.run([sys.executable, __file__, "--one-seed", str(seed), "--steps", str(args.steps), "--clips",
                        str(args.clips), "--crops", str(args.crops), "--out", str(out)], check=True, cwd=REPO)
        runs.append(json.loads((out / f"seed{seed}.json").read_text()))
    print(f"\nthe hard set's test split (64 videos, {args.clips} clips x {args.crops} crops), {args.seeds} seeds x "
          f"{args.steps} steps; {cpu_name()} ({matrix_flags()}), torch kernels "
          f"{torch.backends.cpu.get_cpu_capability()}\n")
    print("| path | top-1 | spread | videos whose top-1 is fp32's | lowest seed | views whose top-1 is fp32's |")
    print("|---|---|---|---|---|---|")
    for name in runs[0]:
        top1 = [r[name]["top1"] for r in runs]
        same = [r[name]["agreement"] for r in runs]
        spread = statistics.stdev(top1) if len(top1) > 1 else 0.0
        views = statistics.mean(r[name]["view agreement"] for r in runs)
        print(f"| {name} | {statistics.mean(top1):.3f} | {spread:.3f} | {statistics.mean(same):.1%} | {min(same):.1%} "
              f"| {views:.1%} |")


if __name__ == "__main__":
    main()
