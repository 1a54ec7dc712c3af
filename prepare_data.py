"""Download and extract the UCF101 subset, make the synthetic one, or check and split your own videos
(data.source: folder), and write the label maps.

    python prepare_data.py --config config.yaml [--check sampled|full] [--shards DIR [--shard-mb 256]]
                           [--make-recordings DIR] [--split-by-duplicates AUDIT_ISSUES_CSV]

data.exclude and data.relabel (CSVs in the shape of audit.py's issues.csv) leave out or relabel the videos
their rows name; --split-by-duplicates keeps each duplicate cluster an audit found in one split.

--make-recordings DIR first writes synthetic untrimmed recordings and their annotations (annotations.csv,
label_studio.json) into DIR, from data.synthetic (make demo-untrimmed).

--shards DIR also writes the prepared data as tar shards into DIR (train from them with
data.source: shards and data.root: DIR, or the URL you copy DIR to).
"""

from __future__ import annotations

from pathlib import Path

from video_classifier.core.cli import DEFAULT_CONFIG, config_parser
from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError, exit_on_user_error
from video_classifier.core.preflight import check_hub_files, data_files


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--check", choices=("sampled", "full"), default="sampled",
                        help="data.source folder: decode a frame at each video's start, middle and end (sampled), "
                             "or every frame (full)")
    parser.add_argument("--shards", metavar="DIR", help="also write the prepared data as WebDataset-style tar "
                        "shards into DIR (a new folder): <split>-NNNNN.tar, index.json, labels.json, manifest.csv")
    parser.add_argument("--shard-mb", type=float, default=256.0,
                        help="largest shard, in MB (default 256; a bigger video gets a shard of its own)")
    parser.add_argument("--split-by-duplicates", metavar="ISSUES_CSV",
                        help="data.source folder: keep each duplicate cluster of an audit's issues.csv in one split "
                             "(sets data.duplicate_groups); prepare into a new data.root")
    parser.add_argument("--make-recordings", metavar="DIR", help="first write synthetic annotated recordings "
                        "into DIR (data.synthetic's frames; annotations.csv and label_studio.json)")
    args = parser.parse_args(argv)
    overrides = [*args.overrides, *([f"data.duplicate_groups={args.split_by_duplicates}"]
                                    if args.split_by_duplicates else [])]
    config = load_config(args.config or DEFAULT_CONFIG, overrides)
    check_hub_files(data_files(config.data))  # before seconds of imports: at once offline
    # torch comes in only now
    from video_classifier.data.prepare import prepare
    from video_classifier.data.recordings import write_recordings
    from video_classifier.data.shards import write_shards

    if args.make_recordings:
        write_recordings(Path(args.make_recordings), config.data.synthetic)
    root = prepare(config.data, args.check)
    if args.shards:
        if args.shard_mb <= 0:
            raise UserError(f"--shard-mb {args.shard_mb}: must be > 0")
        write_shards(root, args.shards, args.shard_mb)


if __name__ == "__main__":
    main()
