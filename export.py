"""Export a trained model to ONNX, with its configs beside it, and prove parity with torch on real clips.

    python export.py [--config config.yaml] [--model FOLDER] [--out FOLDER] [--clips N] [--atol 1e-4]
                     [--quantize int8|openvino-int8 [--calibrate N] [--min-agreement 0.99] [--accuracy-control]]

Writes model.onnx (dynamic batch), config.json, the processor configs, labels.json and parity.json into
--out (default: <model>/onnx). Stops with an error when the ONNX logits differ from torch's by more than
--atol on the clips. --quantize int8 also writes an int8 copy into <out>-int8 (onnxruntime's static
quantization calibrated on N val videos' centre clips; --calibrate 0: dynamic), kept only where at least
--min-agreement of the clips keep torch's prediction (the top-1; a multi-label model's labels).
--quantize openvino-int8 writes OpenVINO's own int8 model instead (NNCF, calibrated the same way; --calibrate
0: int8 weights only) into <out>-openvino-int8, for --backend openvino; --accuracy-control returns its layers
to float, those int8 changes most first, until the calibration videos' eval views keep --min-agreement of
their predictions.
Then: python infer.py VIDEO --backend onnxruntime --model <out> (openvino for OpenVINO's int8).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch

from video_classifier.core.cli import config_parser, config_path
from video_classifier.core.config import Config, load_config
from video_classifier.core.errors import UserError, exit_on_user_error
from video_classifier.core.run_folder import EXPORT, ONNX_FILE
from video_classifier.data.datasets import ViewDataset
from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import load_prepared
from video_classifier.model.model_spec import ModelSpec
from video_classifier.model.modeling import load_trained
from video_classifier.serve.onnx_export import OnnxModel, export_onnx
from video_classifier.serve.openvino_backend import OpenVinoModel, Validation, quantize_openvino_int8
from video_classifier.serve.quantize import int8_parity, predictions, quantize_int8

QUANTIZERS = ("int8", "openvino-int8")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", help="trained model folder (default: the config's train.output_dir)")
    parser.add_argument("--out", help="folder for the export (default: <model>/onnx)")
    parser.add_argument("--clips", type=int, default=12, help="test videos whose centre clip checks parity")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest |logit difference| allowed")
    parser.add_argument("--quantize", choices=QUANTIZERS, help="also write an int8 copy: int8 (onnxruntime) into "
                        "<out>-int8, openvino-int8 (NNCF) into <out>-openvino-int8")
    parser.add_argument("--calibrate", type=int, default=32,
                        help="val videos whose centre clips calibrate int8 (default 32; 0: dynamic quantization)")
    parser.add_argument("--min-agreement", type=float, default=0.99,
                        help="share of the parity clips whose prediction int8 must keep (default 0.99)")
    parser.add_argument("--accuracy-control", action="store_true",
                        help="openvino-int8, calibrated: return layers to float until the calibration videos' "
                        "eval views keep --min-agreement of their predictions (NNCF; many passes over them)")
    args = parser.parse_args(argv)
    config = load_config(config_path(args), args.overrides)
    folder = Path(args.model or config.train.output_dir)
    if not (folder / "config.json").is_file():
        raise UserError(f"model folder {folder} has no config.json: train first, or pass --model")
    model, spec = load_trained(str(folder), config.data.sample_rate)
    clips = centre_clips(config, spec, "test", args.clips)  # (N, T, C, H, W), real clips
    out = Path(args.out) if args.out else folder / EXPORT
    record = export_onnx(model, spec, folder, clips, out, args.atol)
    print(f"exported {spec.model_type} to {out / ONNX_FILE}; parity on {record['clips']} real clips at batch "
          f"sizes {record['batch_sizes']}: max |logit difference| {record['max_abs_logit_difference']:.2e} "
          f"<= {args.atol:.0e}")
    if args.quantize:
        export_int8(args, config, model, spec, clips, out)


def centre_clips(config: Config, spec: ModelSpec, split: str, count: int) -> torch.Tensor:
    """The centre clip (one crop) of up to `count` videos of `split` (all splits where it has none)."""
    return video_views(config, spec, split, count, 1, 1)


def video_views(config: Config, spec: ModelSpec, split: str, count: int, clips: int, crops: int) -> torch.Tensor:
    """`clips` x `crops` views of each of up to `count` videos of `split` (all splits where it has none)."""
    label2id, records = load_prepared(config.data.root)
    chosen = [r for r in records if r.split == split][:count] or records[:count]
    views = ViewDataset(chosen, config.data.root, label2id, spec.preprocess, clips, crops,
                        choose_decoder(config.data.decoder).decode)
    return torch.cat([views[i]["views"] for i in range(len(views))])


def export_int8(args: Any, config: Config, model: Any, spec: ModelSpec, clips: torch.Tensor, fp32: Path) -> None:
    """The int8 copy of the fp32 export (onnxruntime's, or OpenVINO's through NNCF), calibrated on val clips
    (or with --calibrate 0 dynamic / weights only), and its parity."""
    if args.calibrate < 0 or not 0 < args.min_agreement <= 1:
        raise UserError("--calibrate must be >= 0 and --min-agreement in (0, 1]")
    if args.accuracy_control and (args.quantize != "openvino-int8" or not args.calibrate):
        raise UserError("--accuracy-control needs --quantize openvino-int8 with --calibrate N > 0 (it returns "
                        "calibrated layers to float)")
    openvino = args.quantize == "openvino-int8"
    out = fp32.with_name(fp32.name + ("-openvino-int8" if openvino else "-int8"))
    calibration = (spec.pixels(centre_clips(config, spec, "val", args.calibrate)).numpy()
                   if args.calibrate else None)
    calibrated = f"calibrated on {len(calibration)} val clips" if args.calibrate else ""
    if openvino:
        method = f"OpenVINO (NNCF), {calibrated}" if args.calibrate else "OpenVINO (NNCF), weights only"
        quantize_openvino_int8(fp32, out, calibration, validation=validation(args, config, spec))
        run = OpenVinoModel(out, "fp32").run
        method += ", accuracy control" if args.accuracy_control else ""
    else:
        method = f"static, {calibrated}" if args.calibrate else "dynamic"
        quantize_int8(fp32, out, spec.input_key, calibration)
        run = OnnxModel(out).run
    with torch.inference_mode():
        reference = spec.logits(model, clips).numpy()
    record = int8_parity(out, run, spec.pixels(clips), reference, spec.task, method, args.min_agreement)
    print(f"quantized to int8 ({method}) in {out}; {record['agreement']:.1%} of {len(clips)} clips "
          f"keep torch's prediction, max |logit difference| {record['max_abs_logit_difference']:.3f} "
          f"(logits up to {record['logit_range']:.2f})")


def validation(args: Any, config: Config, spec: ModelSpec) -> Validation | None:
    """With --accuracy-control: the --calibrate val videos' eval views (eval.num_clips x num_crops), whose fp32
    predictions NNCF is to keep on at least --min-agreement of them."""
    if not args.accuracy_control:
        return None
    views = video_views(config, spec, "val", args.calibrate, config.eval.num_clips, config.eval.num_crops)
    return Validation(spec.pixels(views).numpy(), partial(predictions, spec.task), 1 - args.min_agreement)


if __name__ == "__main__":
    main()
