"""A million-row manifest: records held as arrays (RecordTable) load, split by group and are read by
DataLoader workers without copying them; the same records, items and splits as the list code."""

import random
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from video_classifier.data import ClipDataset
from video_classifier.decoding import decode_pyav
from video_classifier.prepare import load_prepared
from video_classifier.preprocessing import PreprocessSpec, uniform_clip_starts
from video_classifier.records import RecordTable, split_by_group
from video_classifier.user_videos import SPLITS, Listed, assign_splits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from scale import Reader, manifest_text, read_list  # noqa: E402

SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.5,) * 3, std=(0.5,) * 3)


def test_a_table_gives_the_records_and_clip_items_of_the_list(tiny_workspace):
    _, records = load_prepared(tiny_workspace / "data")
    table = RecordTable.of(records)
    assert len(table) == len(records) and list(table) == records and table[5] == records[5]
    assert list(RecordTable.read_csv((tiny_workspace / "data" / "manifest.csv").read_text())) == records
    clips = ClipDataset(records, tiny_workspace / "data", {}, SPEC, train=False, decoder=decode_pyav)
    expected = [(v, k, start) for v, r in enumerate(records)
                for k, start in enumerate(uniform_clip_starts(r.duration, SPEC.clip_duration(r.fps)))]
    assert list(clips.items) == expected and len(clips) == len(expected)
    train = ClipDataset(records, tiny_workspace / "data", {}, SPEC, train=True, decoder=decode_pyav)
    assert list(train.items) == [(v, 0, None) for v in range(len(records))]


def test_split_by_group_chooses_what_assign_splits_chooses():
    rng = random.Random(0)
    videos = [Listed(Path(f"/v/{i}.mp4"), f"c{rng.randrange(7)}", group=f"g{rng.randrange(90)}") for i in range(1500)]
    for multi in (False, True):
        for v in videos:
            v.multi_label = multi
        expected, _ = assign_splits(videos, (0.7, 0.2, 0.1), "", 3)
        codes = split_by_group([v.label for v in videos], [v.group for v in videos], (0.7, 0.2, 0.1), 3, multi)
        assert [SPLITS[c] for c in codes] == [expected[v.path] for v in videos]
        assert len(set(codes)) == 3


def test_a_million_rows_load_split_and_shard_in_bounded_time_and_memory():
    text = manifest_text(1_000_000)
    start = time.perf_counter()
    table = RecordTable.read_csv(text)
    loaded = time.perf_counter()
    labels, groups = np.asarray(table.label_names)[table.labels], [table.groups[i] for i in range(len(table))]
    codes = split_by_group(labels, groups, (0.8, 0.1, 0.1), 0)
    shards = [[np.arange(len(table))[rank::8][w::4] for w in range(4)] for rank in range(8)]
    seconds = time.perf_counter() - start
    print(f"1,000,000 rows: loaded in {loaded - start:.1f} s, split and sharded in {seconds - (loaded - start):.1f} s, "
          f"{table.nbytes / len(table):.0f} bytes a row")
    assert len(table) == 1_000_000 and table[999_999].path.endswith("c0999999.mp4")
    assert sum(len(s) for rank in shards for s in rank) == 1_000_000
    assert table.nbytes < 150 * len(table)  # about 96 bytes a row here, against about 700 as objects
    # a class's group never straddles splits (groups are per class, as assign_splits takes them)
    groups = np.asarray(groups)
    for label in table.label_names[:5]:
        mine = labels == label
        assert all(len(set(codes[mine & (groups == g)])) == 1 for g in np.unique(groups[mine]))
    assert abs(np.mean(codes == 0) - 0.8) < 0.05 and set(np.unique(codes)) == {0, 1, 2}
    assert seconds < 120, seconds  # about 15 s on 2 busy cores


def worker_uss_growth(records) -> float:
    """MB a DataLoader worker makes private while it reads every record once (2 workers)."""
    loader = torch.utils.data.DataLoader(Reader(records), batch_size=5000, num_workers=2)
    first, peak = None, 0.0
    for _, uss in loader:
        values = uss[uss > 0]
        if len(values):
            first = float(values[0]) if first is None else first
            peak = max(peak, float(values.max()))
    return (peak - first) / 1e6


def test_workers_do_not_copy_the_table_as_they_read_it():
    text = manifest_text(200_000)
    table_growth = worker_uss_growth(RecordTable.read_csv(text))
    list_growth = worker_uss_growth(read_list(text))
    print(f"worker private memory grown while reading 200,000 rows: table {table_growth:.1f} MB, "
          f"list {list_growth:.1f} MB")
    assert table_growth < 8
    assert list_growth > 3 * max(table_growth, 1)  # the trap is real here: the check can fail
    assert psutil.Process().memory_info().rss > 0
