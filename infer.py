"""Predict the labels of videos with a trained model (a folder or a Hub id).

    python infer.py VIDEO_OR_FOLDER [...] [--model FOLDER_OR_HUB_ID] [--top-k K] [--clips N] [--crops M]
                    [--mode manual|pipeline] [--backend torch|onnxruntime] [--json]
    python infer.py LONG_VIDEO --timeline [--stride SECONDS] [--min-segment SECONDS] [--switch-cost NATS]
                    [--out FOLDER]
    python infer.py VIDEO_OR_FOLDER [...] --explain [hirescam|gradcam|occlusion] [--explain-label LABEL] [--out FOLDER]
    python infer.py VIDEO_OR_FOLDER [...] --zero-shot [--model XCLIP_FOLDER_OR_HUB_ID] [--labels NAME,NAME,...]
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from video_classifier.core.cli import add_view_args, config_parser, config_path, view_overrides
from video_classifier.core.config import load_config
from video_classifier.core.errors import exit_on_user_error
from video_classifier.core.preflight import check_hub_files, model_files, trained_model
from video_classifier.serve.timeline_defaults import MIN_SEGMENT_WINDOWS, SWITCH_COST


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files, or folders to search")
    parser.add_argument("--model", help="trained model folder or Hub id (default: the config's train.output_dir)")
    parser.add_argument("--top-k", type=int, help="labels to show per video (default: infer.top_k)")
    add_view_args(parser)
    parser.add_argument("--mode", choices=["manual", "pipeline"], help="default: infer.mode")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--backend", choices=["torch", "onnxruntime", "openvino"], default="torch",
                        help="onnxruntime, openvino: --model is a folder export.py wrote")
    parser.add_argument("--timeline", action="store_true",
                        help="slide one clip over each video: top-k per window, segments, a plot (in --out)")
    parser.add_argument("--stride", type=float, help="--timeline: seconds between windows (default: half a clip)")
    parser.add_argument("--min-segment", type=float,
                        help="--timeline: merge segments shorter than this many seconds into a neighbour (default: "
                             f"{MIN_SEGMENT_WINDOWS:g} windows, i.e. clips, long; 0: keep every segment)")
    parser.add_argument("--switch-cost", type=float, default=SWITCH_COST,
                        help=f"--timeline: nats a change of label costs when windows are labelled (default "
                             f"{SWITCH_COST}; 0: each window's top label)")
    parser.add_argument("--explain", nargs="?", const="hirescam", choices=["hirescam", "gradcam", "occlusion"],
                        help="where and when the model saw a label: a map over space and time (default method "
                             "hirescam), as an MP4 with the map blended in, a strip of key frames and a curve (in --out)")
    parser.add_argument("--explain-label", metavar="LABEL", help="--explain: the label to explain (default: the top one)")
    parser.add_argument("--out", help="--timeline, --explain: folder for the files (default runs/timeline, runs/explain)")
    parser.add_argument("--zero-shot", action="store_true",
                        help="no training: an X-CLIP checkpoint (--model, default model.checkpoint) scores the videos "
                             "against the class names in model.zero_shot_prompt")
    parser.add_argument("--labels", type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
                        metavar="NAME,NAME,...", help="--zero-shot: the class names (default: data.root's labels.json)")
    args = parser.parse_args(argv)
    if args.explain and (args.timeline or args.zero_shot):
        parser.error("--explain goes alone: without --timeline and --zero-shot")
    if args.explain_label and not args.explain:
        parser.error("--explain-label goes with --explain")
    if args.labels and not args.zero_shot:
        parser.error("--labels goes with --zero-shot (a trained model has its own classes)")
    if args.stride is not None and args.stride <= 0:
        parser.error(f"--stride {args.stride}: must be > 0 seconds")
    if args.min_segment is not None and args.min_segment < 0:
        parser.error(f"--min-segment {args.min_segment}: must be >= 0 seconds")
    if args.switch_cost < 0:
        parser.error(f"--switch-cost {args.switch_cost}: must be >= 0 nats")
    config = load_config(config_path(args), view_overrides(args))
    model_ref = trained_model(args.model, config, args.zero_shot)
    check_hub_files(model_files(model_ref, config, args.zero_shot))  # before seconds of imports: at once offline
    # torch and transformers come in only now
    from video_classifier.model.zero_shot import zero_shot_classes
    from video_classifier.serve.inference import (
        format_explanations,
        format_table,
        format_timelines,
        predict,
        predict_explain,
        predict_timeline,
    )

    zero_shot = zero_shot_classes(config.data.root, args.labels) if args.zero_shot else None
    if args.explain:
        results = predict_explain(model_ref, args.videos, config, args.explain, args.explain_label,
                                  Path(args.out or "runs/explain"), args.backend)
        print(json.dumps(results, indent=2) if args.json else format_explanations(results))
        return
    if args.timeline:
        results = predict_timeline(model_ref, args.videos, config, args.top_k or config.infer.top_k, args.stride,
                                   args.min_segment, Path(args.out or "runs/timeline"), args.backend,
                                   args.switch_cost, zero_shot)
        print(json.dumps(results, indent=2) if args.json else format_timelines(results))
        return
    predictions = predict(
        model_ref=model_ref,
        paths=args.videos,
        config=config,
        top_k=args.top_k or config.infer.top_k,
        mode=args.mode or config.infer.mode,
        backend=args.backend,
        zero_shot=zero_shot,
    )
    print(json.dumps([asdict(p) for p in predictions], indent=2) if args.json else format_table(predictions))


if __name__ == "__main__":
    main()
