"""Download and extract the UCF101 subset, make the synthetic one, or check and split your own videos
(data.source: folder), and write the label maps.

    python prepare_data.py --config config.yaml [--check sampled|full]
"""

from __future__ import annotations

from video_classifier.cli import DEFAULT_CONFIG, config_parser
from video_classifier.config import load_config
from video_classifier.errors import exit_on_user_error
from video_classifier.prepare import prepare


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--check", choices=("sampled", "full"), default="sampled",
                        help="data.source folder: decode a frame at each video's start, middle and end (sampled), "
                             "or every frame (full)")
    args = parser.parse_args(argv)
    config = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    prepare(config.data, args.check)


if __name__ == "__main__":
    main()
