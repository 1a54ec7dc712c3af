"""Export a trained model to ONNX, with its configs beside it, and prove parity with torch on real clips.

    python export.py [--config config.yaml] [--model FOLDER] [--out FOLDER] [--clips N] [--atol 1e-4]

Writes model.onnx (dynamic batch), config.json, the processor configs, labels.json and parity.json into
--out (default: <model>/onnx). Stops with an error when the ONNX logits differ from torch's by more than
--atol on the clips. Then: python infer.py VIDEO --backend onnxruntime --model <out>.
"""

from __future__ import annotations

from pathlib import Path

import torch

from video_classifier.core.cli import config_parser, config_path
from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError, exit_on_user_error
from video_classifier.core.run_folder import EXPORT, ONNX_FILE
from video_classifier.data.datasets import ViewDataset
from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import load_prepared
from video_classifier.model.modeling import load_trained
from video_classifier.serve.onnx_export import export_onnx


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", help="trained model folder (default: the config's train.output_dir)")
    parser.add_argument("--out", help="folder for the export (default: <model>/onnx)")
    parser.add_argument("--clips", type=int, default=12, help="test videos whose centre clip checks parity")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest |logit difference| allowed")
    args = parser.parse_args(argv)
    config = load_config(config_path(args), args.overrides)
    folder = Path(args.model or config.train.output_dir)
    if not (folder / "config.json").is_file():
        raise UserError(f"model folder {folder} has no config.json: train first, or pass --model")
    model, spec = load_trained(str(folder), config.data.sample_rate)
    label2id, records = load_prepared(config.data.root)
    test = [r for r in records if r.split == "test"][: args.clips] or records[: args.clips]
    views = ViewDataset(test, config.data.root, label2id, spec.preprocess, 1, 1,
                        choose_decoder(config.data.decoder).decode)
    clips = torch.cat([views[i]["views"] for i in range(len(views))])  # (N, T, C, H, W), real clips
    out = Path(args.out) if args.out else folder / EXPORT
    record = export_onnx(model, spec, folder, clips, out, args.atol)
    print(f"exported {spec.model_type} to {out / ONNX_FILE}; parity on {record['clips']} real clips at batch "
          f"sizes {record['batch_sizes']}: max |logit difference| {record['max_abs_logit_difference']:.2e} "
          f"<= {args.atol:.0e}")


if __name__ == "__main__":
    main()
