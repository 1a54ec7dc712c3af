"""Serve a trained model on a web page: upload or pick a video, see its labels as infer.py scores them.

    python app.py [--model FOLDER_OR_HUB_ID] [--config config.yaml] [--backend torch|onnxruntime]
                  [--host 127.0.0.1] [--port 7860] [--allow-private-streams]
    python app.py --model FOLDER --space DIR [--hub-id USER/MODEL]   # write a Hugging Face Space; serve nothing
    python app.py --zero-shot [--model XCLIP_FOLDER_OR_HUB_ID]       # no training: X-CLIP and the class names
"""

from __future__ import annotations

from pathlib import Path

from video_classifier.core.cli import config_parser, config_path
from video_classifier.core.config import load_config
from video_classifier.core.errors import exit_on_user_error
from video_classifier.core.preflight import check_hub_files, model_files, trained_model

DEMO_RUN = "runs/demo"  # what `make demo` trains: the page's model when no --model is given


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", help=f"trained model folder or Hub id (default: {DEMO_RUN} when it exists, "
                                        "else the config's train.output_dir)")
    parser.add_argument("--backend", choices=["torch", "onnxruntime", "openvino"], default="torch",
                        help="onnxruntime, openvino: --model is a folder export.py wrote")
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1, this machine only; "
                                       "0.0.0.0: every network interface)")
    parser.add_argument("--port", type=int, help="port (default: 7860, or the next free one)")
    parser.add_argument("--allow-private-streams", action="store_true",
                        help="with --host beyond 127.0.0.1: the live tab may read streams from private and local "
                             "addresses too (an IP camera on the network; anyone who opens the page can then make "
                             "the server connect there)")
    parser.add_argument("--space", metavar="DIR", help="write a Hugging Face Space serving the model into DIR")
    parser.add_argument("--hub-id", help="--space: the Space loads the model from this Hub repo instead of a copy")
    parser.add_argument("--zero-shot", action="store_true",
                        help="no training: an X-CLIP checkpoint (--model, default model.checkpoint) scores the videos "
                             "against the class names of labels.json in model.zero_shot_prompt")
    args = parser.parse_args(argv)
    if args.hub_id and not args.space:
        parser.error("--hub-id goes with --space DIR")
    if args.zero_shot and args.space:
        parser.error("--space writes a Space for a trained model folder; --zero-shot serves here only")
    if args.model is None and not args.zero_shot and (Path(DEMO_RUN) / "config.json").is_file():
        args.model = DEMO_RUN
    config_file = config_path(args)
    config = load_config(config_file, args.overrides)
    model_ref = trained_model(args.model, config, args.zero_shot)
    check_hub_files(model_files(model_ref, config, args.zero_shot))  # before seconds of imports: at once offline
    # torch, transformers and gradio come in only now
    from video_classifier.model.zero_shot import zero_shot_classes
    from video_classifier.serve.web import build_page, load_demo, serve, write_space

    zero_shot = zero_shot_classes(config.data.root) if args.zero_shot else None

    if args.space:
        files = write_space(model_ref, config_file, config, Path(args.space), args.hub_id, args.backend)
        print(f"wrote a Space ({len(files)} files) to {args.space}: upload it with "
              f"`hf upload USER/SPACE {args.space} --repo-type space`, or try it here with "
              f"`cd {args.space} && python app.py`")
        return
    serve(build_page(load_demo(model_ref, config, args.backend, zero_shot)), args.host, args.port,
          allow_private_streams=args.allow_private_streams)


if __name__ == "__main__":
    main()
