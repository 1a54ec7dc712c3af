"""Evaluate a trained model on a split: video level (clips x crops, softmax averaged) and clip level.

    python eval.py [--config config.yaml] [--model FOLDER_OR_HUB_ID] [--split test] [--clips N] [--crops M]
    python eval.py --zero-shot [--model XCLIP_FOLDER_OR_HUB_ID] [...]   # no training: X-CLIP and the class names
    python eval.py --timeline [--model ...] [--split test]   # annotated recordings: the timeline against them

Writes eval_<split>_<N>x<M>.json, confusion_<split>_<N>x<M>.png and
scores_<split>_<N>x<M>.json (per-video scores) into --out, by default the model folder (--zero-shot:
runs/zero-shot). A video that does not decode is left out, listed in the metrics and in decode_failures.csv.
--timeline writes eval_<split>_timeline.json (frame accuracy, F1@k, edit, mAP@tIoU, false alarms per hour of
background, per recording) and timeline_<split>_<recording>.png for the first few recordings.
"""

from __future__ import annotations

import sys
from pathlib import Path

from video_classifier.core.cli import add_view_args, config_parser, config_path, view_overrides
from video_classifier.core.config import load_config
from video_classifier.core.cpus import fit_threads
from video_classifier.core.errors import UserError, exit_on_user_error
from video_classifier.core.run_folder import FAILURES
from video_classifier.data.clips import DecodeFailures
from video_classifier.data.decoding import announce, choose_decoder
from video_classifier.data.manifest import load_prepared
from video_classifier.data.user_videos import SPLITS
from video_classifier.engine.evaluation import evaluate_model
from video_classifier.model.compiling import compile_for_inference
from video_classifier.model.modeling import load_trained
from video_classifier.model.precision import with_precision
from video_classifier.model.unknown import with_unknown
from video_classifier.model.zero_shot import load_zero_shot, zero_shot_classes
from video_classifier.serve.timeline_eval import evaluate_timelines, format_timeline_metrics


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", help="trained model folder or Hub id (default: the config's train.output_dir)")
    parser.add_argument("--split", choices=SPLITS, default="test")
    add_view_args(parser)
    parser.add_argument("--out", help="folder for the results (default: the model folder, or runs/eval; "
                                      "--zero-shot: runs/zero-shot)")
    parser.add_argument("--timeline", action="store_true",
                        help="the timeline over each whole annotated recording of the split, against its annotations")
    parser.add_argument("--zero-shot", action="store_true",
                        help="no training: an X-CLIP checkpoint (--model, default model.checkpoint) scores the videos "
                             "against the class names of labels.json in model.zero_shot_prompt")
    args = parser.parse_args(argv)
    config = load_config(config_path(args), view_overrides(args))

    # Data, model, and the model's own preprocessing
    label2id, records = load_prepared(config.data.root)
    split_records = {args.split: [r for r in records if r.split == args.split]}
    if not split_records[args.split]:
        raise UserError(f"data folder {config.data.root} has no {args.split} videos: choose another --split")
    if any(r.fps <= 0 for r in split_records[args.split]):  # a streamed train split (data.hf_dataset.streaming)
        raise UserError(f"the {args.split} videos in {config.data.root} were streamed, never probed: evaluate val or "
                        "test, or prepare the dataset with data.hf_dataset.streaming: false")
    if args.zero_shot:  # X-CLIP scores the videos against the class names: no trained model, no stock pipeline
        model_ref = args.model or config.model.checkpoint
        model, spec = load_zero_shot(model_ref, zero_shot_classes(config.data.root), config)
        saved, default_out = None, "runs/zero-shot"
    else:
        model_ref = args.model or config.train.output_dir
        model, spec = load_trained(model_ref, config.data.sample_rate)
        saved, default_out = model_ref, model_ref if Path(model_ref).is_dir() else "runs/eval"
    spec = with_precision(compile_for_inference(model, config.infer.compile), spec, config.infer.precision)
    spec = with_unknown(model, spec, config.infer.unknown)  # infer.unknown: the share answered unknown
    fitted = fit_threads()  # torch's threads to the cores this process may use (core/cpus.py)
    if fitted:
        print(fitted, file=sys.stderr)
    if {label: i for i, label in spec.id2label.items()} != label2id:
        raise UserError(f"model {model_ref} was trained on other classes than {config.data.root}/labels.json holds")

    # Evaluate
    out = Path(args.out or default_out)
    tag = f"_{config.eval.num_clips}x{config.eval.num_crops}"
    out.mkdir(parents=True, exist_ok=True)
    if args.timeline:
        decoding = choose_decoder(config.data.decoder)
        announce(decoding)
        print(format_timeline_metrics(evaluate_timelines(model, spec, config, split_records[args.split], decoding,
                                                         out, args.split), args.split, out))
        return
    evaluate_model(model, spec, config, split_records, label2id, out, f"eval_{args.split}{tag}.json", tag,
                   saved=saved, pipeline_splits=(args.split,), failures=DecodeFailures(out / FAILURES))


if __name__ == "__main__":
    main()
