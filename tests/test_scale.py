"""A million-row manifest: records held as arrays (RecordTable) load, split by group and are read by
DataLoader workers without copying them; the same records, items and splits as the list code."""

import csv
import gc
import io
import json
import math
import random
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from accelerate.data_loader import prepare_data_loader

from video_classifier.data.datasets import ClipDataset
from video_classifier.data.decoding import decode_pyav
from video_classifier.data.manifest import VideoRecord, load_prepared
from video_classifier.data.preprocessing import PreprocessSpec
from video_classifier.data.records import RecordTable, split_by_group
from video_classifier.data.user_videos import SPLITS, Listed, assign_splits

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
    # pytorchvideo's uniform sampler, restated: back-to-back clips from 0 while one fits whole, at least one
    clip_counts = [max(1, math.floor(Fraction(r.duration) / SPEC.clip_duration(r.fps))) for r in records]
    expected = [(v, k, k * SPEC.clip_duration(r.fps)) for v, (r, n) in enumerate(zip(records, clip_counts, strict=True))
                for k in range(n)]
    assert sum(clip_counts) > len(records)  # some video holds more than one clip
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


def rank_shards(dataset: torch.utils.data.Dataset, ranks: int, batch_size: int) -> list[np.ndarray]:
    """The dataset indices each of `ranks` processes reads in one epoch, dealt as the Trainer deals them under
    torchrun: accelerate's prepare_data_loader over a random sampler seeded alike on every rank. Only the
    batch sampler runs: no item is read. (Each rank's DataLoader workers then take its batches in turn.)"""
    shards = []
    for rank in range(ranks):
        sampler = torch.utils.data.RandomSampler(dataset, generator=torch.Generator().manual_seed(0))
        loader = prepare_data_loader(torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler),
                                     num_processes=ranks, process_index=rank, put_on_device=False)
        shards.append(np.concatenate([np.asarray(batch) for batch in loader.batch_sampler]))
    return shards


def manifest_rows(text: str, wanted: set[int]) -> dict[int, VideoRecord]:
    """Rows `wanted` of manifest.csv's text as the csv module reads them, nothing of ours in between."""
    rows = {}
    for i, row in enumerate(csv.DictReader(io.StringIO(text))):
        if i in wanted:
            rows[i] = VideoRecord(row["path"], row["label"], row["split"], row["group"], int(row["frames"]),
                                  float(row["fps"]), float(row["duration"]))
    return rows


def test_a_million_rows_load_split_and_shard_in_bounded_time_and_memory():
    """A million-row manifest loads into a RecordTable and splits by group; a ClipDataset of it, dealt to 8 ranks
    by accelerate as under torchrun, gives each row to one rank once an epoch, and the rows the ranks read are
    the manifest's as the csv module reads them."""
    text = manifest_text(1_000_000)
    start = time.perf_counter()
    table = RecordTable.read_csv(text)
    loaded = time.perf_counter()
    labels, groups = np.asarray(table.label_names)[table.labels], [table.groups[i] for i in range(len(table))]
    codes = split_by_group(labels, groups, (0.8, 0.1, 0.1), 0)
    dataset = ClipDataset(table, "", {}, SPEC, train=True, decoder=decode_pyav)  # training: one item a video
    shards = rank_shards(dataset, ranks=8, batch_size=125)  # 8000 batches: 1000 a rank, none padded
    seconds = time.perf_counter() - start
    print(f"1,000,000 rows: loaded in {loaded - start:.1f} s, split and sharded in {seconds - (loaded - start):.1f} s, "
          f"{table.nbytes / len(table):.0f} bytes a row")
    assert len(table) == 1_000_000 and table[999_999].path.endswith("c0999999.mp4")
    assert [len(s) for s in shards] == [125_000] * 8
    assert (np.bincount(np.concatenate(shards), minlength=len(table)) == 1).all()  # each row read once an epoch
    rng = np.random.default_rng(0)
    sampled = {int(i) for shard in shards for i in rng.choice(shard, 100, replace=False)} | {0, 999_999}
    expected = manifest_rows(text, sampled)
    for i in sampled:  # the record ClipDataset decodes for item i: its video's row
        assert dataset.records[dataset.items[i][0]] == expected[i], i
    assert table.nbytes < 150 * len(table)  # about 96 bytes a row here, against about 700 as objects
    # a class's group never straddles splits (groups are per class, as assign_splits takes them)
    groups = np.asarray(groups)
    for label in table.label_names[:5]:
        mine = labels == label
        assert all(len(set(codes[mine & (groups == g)])) == 1 for g in np.unique(groups[mine]))
    assert abs(np.mean(codes == 0) - 0.8) < 0.05 and set(np.unique(codes)) == {0, 1, 2}
    assert seconds < 120, seconds  # about 15 s on 2 busy cores


def parent_rss_growth(rows: int) -> dict[str, float]:
    """MB a fresh Python process's resident memory grows by as it reads a manifest of `rows` rows into a
    RecordTable, then into a list of VideoRecord objects, each measured once what the reading freed has been
    handed back to the OS (gc, then glibc's malloc_trim); and the table's own count (nbytes). A fresh process,
    because in this one the memory earlier tests freed would be reused and hide the growth."""
    root = Path(__file__).resolve().parents[1]
    code = f"""
import ctypes, gc, json, sys
sys.path[:0] = [{str(root)!r}, {str(root / "bench")!r}]
import psutil
from scale import manifest_text, read_list
from video_classifier.data.records import RecordTable
libc = ctypes.CDLL(None)
def settled():
    gc.collect()
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    return psutil.Process().memory_info().rss / 1e6
text = manifest_text({rows})
before = settled(); table = RecordTable.read_csv(text); table_mb = settled() - before
before = settled(); listed = read_list(text); list_mb = settled() - before
print(json.dumps({{"table": table_mb, "nbytes": table.nbytes / 1e6, "list": list_mb}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def worker_uss_growth(records) -> float:
    """MB a DataLoader worker makes private while it reads every record once (2 workers)."""
    # a full garbage collection in a worker writes to the header of every object the parent tracks, copying
    # the pages they sit on; the million-row test's millions of short-lived objects leave the collector due
    # for one (130 MB of copies here, none the table's doing). Collecting here resets its count before forking.
    gc.collect()
    loader = torch.utils.data.DataLoader(Reader(records), batch_size=5000, num_workers=2)
    first, peak = None, 0.0
    for _, uss in loader:
        values = uss[uss > 0]
        if len(values):
            first = float(values[0]) if first is None else first
            peak = max(peak, float(values.max()))
    return (peak - first) / 1e6


def test_workers_do_not_copy_the_table_as_they_read_it():
    """Reading every row of a table leaves a DataLoader worker's private memory as it was; a list of objects does
    not. And the table costs what it says it does (nbytes), as the OS counts a fresh process's memory."""
    text = manifest_text(200_000)
    table_growth = worker_uss_growth(RecordTable.read_csv(text))
    list_growth = worker_uss_growth(read_list(text))
    parent = parent_rss_growth(200_000)
    print(f"worker private memory grown while reading 200,000 rows: table {table_growth:.1f} MB, "
          f"list {list_growth:.1f} MB; a fresh process's resident memory grew by {parent['table']:.0f} MB for the "
          f"table ({parent['nbytes']:.0f} MB by its own count), {parent['list']:.0f} MB for the list")
    assert table_growth < 8
    assert list_growth > 3 * max(table_growth, 1)  # the trap is real here: the check can fail
    # the OS's count of what the table costs agrees with its own (nbytes: about 97 bytes a row, 19 MB; the OS
    # says 21 MB here, and 98 MB for the rows as objects): a table that kept its parsed columns as Python
    # strings (about 100 MB more) fails the bound
    assert 0.8 * parent["nbytes"] < parent["table"] < 1.5 * parent["nbytes"]
    assert parent["list"] > 3 * parent["table"]  # the measure tells the two apart here
