"""A manifest of 10^4 to 10^6 videos: load, split by group, shard over 8 ranks x 4 workers, and what a
DataLoader worker's memory does as it reads every row, with the records as numpy arrays (RecordTable,
what ClipDataset holds) beside a Python list of VideoRecord objects (the old way), in one run.

    .venv/bin/python bench/scale.py [--sizes 10000 100000 1000000] [--workers 4] [--ranks 8]

No video files are needed: the manifest is synthetic (paths, labels of 400 classes, groups of 10 videos),
and the workers read each record as ClipDataset.__getitem__ does (its path, label, fps and duration), without
decoding. "worker USS" is the memory private to a worker (pages it copied from the parent or made): the cost
that grows with a list of objects, whose reference counts are written on every read. RSS also counts the
parent's pages a worker only reads. A benchmark: it prints numbers and checks none.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from video_classifier.data.manifest import VideoRecord  # noqa: E402
from video_classifier.data.records import RecordTable, split_by_group  # noqa: E402


def manifest_text(n: int) -> str:
    """manifest.csv of n videos: 400 classes, groups of 10 videos, 25 fps, 7 s."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["path", "label", "split", "group", "frames", "fps", "duration"])
    for i in range(n):
        label = f"Class{i % 400:03d}"
        writer.writerow([f"videos/{label}/v_{label}_g{i // 4000:05d}_c{i:07d}.mp4", label, "train",
                         f"{i // 4000:05d}", 175, 25.0, 7.0])
    return out.getvalue()


def read_list(text: str) -> list[VideoRecord]:
    """The old load_prepared: one VideoRecord per row."""
    return [VideoRecord(r["path"], r["label"], r["split"], r["group"], int(r["frames"]), float(r["fps"]),
                        float(r["duration"])) for r in csv.DictReader(io.StringIO(text))]


class Reader(torch.utils.data.Dataset):
    """What ClipDataset reads per item, without decoding: the worker's private memory after its last item."""

    def __init__(self, records):
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[int, float]:
        r = self.records[i]
        return len(r.path) + len(r.label), psutil.Process().memory_full_info().uss if i % 5000 == 0 else 0.0


def worker_peak(records, ranks: int, workers: int) -> tuple[float, float]:
    """(peak worker USS, peak worker RSS) in MB, rank 0 of `ranks` read by `workers` workers: every row of its
    shard (rank::ranks), one batch of 1000 at a time."""
    shard = torch.utils.data.Subset(Reader(records), range(0, len(records), ranks))  # rank 0's rows, spread over all
    loader = torch.utils.data.DataLoader(shard, batch_size=1000, num_workers=workers)
    peak_uss, peak_rss_seen = 0.0, [0]
    for _, uss in loader:
        peak_uss = max(peak_uss, float(uss.max()))
        rss = max([peak_rss_seen[0]] + [c.memory_info().rss for c in psutil.Process().children()])
        peak_rss_seen[0] = rss
    return peak_uss / 1e6, peak_rss_seen[0] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--ranks", type=int, default=8)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 4 workers on 2 cores: on purpose
    print(f"{'rows':>9} {'records':<14} {'load s':>7} {'split s':>8} {'shard s':>8} {'parent MB':>10} "
          f"{'worker USS MB':>14} {'worker RSS MB':>14}")
    for n in args.sizes:
        text = manifest_text(n)
        for kind in ("list (old)", "RecordTable"):
            before = psutil.Process().memory_info().rss
            start = time.perf_counter()
            records = read_list(text) if kind == "list (old)" else RecordTable.read_csv(text)
            loaded = time.perf_counter()
            labels = [r.label for r in records] if kind == "list (old)" else records.label_names
            if kind == "list (old)":
                from video_classifier.data.user_videos import Listed, assign_splits

                listed = [Listed(Path(r.path), r.label, group=r.group) for r in records]
                split_of, _ = assign_splits(listed, (0.8, 0.1, 0.1), "", 0)
                splits = [split_of[v.path] for v in listed]
                del listed, split_of
            else:
                codes = split_by_group(np.asarray(records.label_names)[records.labels],
                                       [records.groups[i] for i in range(len(records))], (0.8, 0.1, 0.1), 0)
                splits = codes
            split = time.perf_counter()
            shards = [[np.arange(len(records))[rank::args.ranks][w::args.workers] for w in range(args.workers)]
                      for rank in range(args.ranks)]
            sharded = time.perf_counter()
            parent = (psutil.Process().memory_info().rss - before) / 1e6
            # every rank holds all records and reads its share (rank::ranks, as DistributedSampler deals them)
            uss, rss = worker_peak(records, args.ranks, args.workers)
            print(f"{n:>9} {kind:<14} {loaded - start:>7.2f} {split - loaded:>8.2f} {sharded - split:>8.3f} "
                  f"{parent:>10.0f} {uss:>14.0f} {rss:>14.0f}")
            del records, labels, splits, shards


if __name__ == "__main__":
    main()
