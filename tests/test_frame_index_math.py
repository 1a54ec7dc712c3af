"""The data sources' index arithmetic, against what each docstring defines, computed here: which clips a
video has and where they lie, the time a frame is shown, FFmpeg's best-effort timestamp, which shards
each process and DataLoader worker reads, and where a manifest path's bytes are."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest

from video_classifier.data.datasets import ClipDataset, ClipItems
from video_classifier.data.decoding import BestEffortClock, decode_pyav, playback_time
from video_classifier.data.manifest import VideoRecord
from video_classifier.data.preprocessing import PreprocessSpec
from video_classifier.data.records import RecordTable
from video_classifier.data.shards import ShardClipDataset, shards_of
from video_classifier.data.storage import ArrowRow, RemoteVideo, ShardMember, is_url, join, video_source

SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.5,) * 3, std=(0.5,) * 3)
# 4 frames x stride 2 = 8 frames per clip: 0.32 s at 25 fps, 0.26693 s at 30000/1001 fps
RECORDS = [
    VideoRecord("a.avi", "x", "val", "g1", 30, 25.0, 1.2),  # 1.2 / 0.32: 3 whole clips
    VideoRecord("b.avi", "y", "val", "g2", 51, 30000 / 1001, 1.7),  # NTSC: 6 whole clips (1.7 / 0.26693)
    VideoRecord("c.avi", "x", "val", "g3", 5, 25.0, 0.2),  # shorter than a clip: one
    VideoRecord("d.avi", "y", "val", "g4", 16, 25.0, 0.64),  # exactly 2 clips
]


def clips_from_definition(duration: float, fps: float, spec: PreprocessSpec) -> list[Fraction]:
    """Back-to-back clip starts from 0 while a whole clip fits, at least one; a clip is num_frames x
    sample_rate frames at the video's rate (data.sampling: whole_video: the whole video)."""
    length = Fraction(duration) if spec.whole_video else Fraction(spec.num_frames * spec.sample_rate) / \
        Fraction(fps).limit_denominator(1001)
    count = max(1, math.floor(Fraction(duration) / length))
    return [k * length for k in range(count)]


@pytest.mark.parametrize("whole_video", [False, True])
def test_evaluation_items_are_every_whole_clip_of_every_video(whole_video):
    spec = PreprocessSpec(4, 2, 32, (32, 32), (0.5,) * 3, (0.5,) * 3, whole_video=whole_video)
    items = ClipItems(RecordTable.of(RECORDS), spec, train=False)
    expected = [(v, k, start) for v, r in enumerate(RECORDS)
                for k, start in enumerate(clips_from_definition(r.duration, r.fps, spec))]
    assert [len(clips_from_definition(r.duration, r.fps, spec)) for r in RECORDS] == \
        ([1, 1, 1, 1] if whole_video else [3, 6, 1, 2])
    assert len(items) == len(expected) and list(items) == expected
    assert [items[i] for i in range(len(items))] == expected


def test_training_items_are_one_per_video_with_a_start_drawn_later():
    items = ClipItems(RecordTable.of(RECORDS), SPEC, train=True)
    assert len(items) == 4 and list(items) == [(v, 0, None) for v in range(4)]


def test_evaluation_windows_are_the_clips():
    dataset = ClipDataset(RECORDS, "root", {}, SPEC, train=False, decoder=decode_pyav, max_stride=6)
    assert dataset.max_stride is None  # jitter is for training only
    assert len(dataset) == 12
    length = Fraction(8) / Fraction(30000, 1001)
    assert dataset.window(4) == (length, 2 * length)  # b.avi's second clip
    assert dataset.window(0) == (0, Fraction(8, 25))


def test_training_windows_lie_inside_the_video_or_start_at_0():
    random.seed(0)
    dataset = ClipDataset(RECORDS, "root", {}, SPEC, train=True, decoder=decode_pyav)
    starts = {v: [] for v in range(4)}
    for _ in range(200):
        for v, r in enumerate(RECORDS):
            start, end = dataset.window(v)
            assert end - start == Fraction(8) / Fraction(r.fps).limit_denominator(1001)
            starts[v].append(float(start))
    for v, r in enumerate(RECORDS):
        room = max(r.duration - 8 / r.fps, 0)
        assert 0 <= min(starts[v]) and max(starts[v]) <= room + 1e-9
        if room:  # drawn over the whole room: both ends reached within a tenth of it
            assert min(starts[v]) < 0.1 * room and max(starts[v]) > 0.9 * room
    assert set(starts[2]) == {0.0}  # shorter than a clip


def test_stride_jitter_stretches_the_training_window():
    random.seed(1)
    dataset = ClipDataset(RECORDS, "root", {}, SPEC, train=True, decoder=decode_pyav, max_stride=6)
    assert dataset.max_stride == 6
    base = Fraction(8, 25)
    ratios = []
    for _ in range(300):
        start, end = dataset.window(0)
        ratios.append(float((end - start) / base))  # stride / sample_rate, stride drawn in [2, 6]
        assert 0 <= start and float(start) <= max(1.2 - float(end - start), 0) + 1e-9
    assert 1 <= min(ratios) < 1.1 and 2.9 < max(ratios) <= 3
    assert ClipDataset(RECORDS, "root", {}, SPEC, train=True, decoder=decode_pyav, max_stride=2).max_stride is None


def test_a_frame_is_shown_in_the_middle_of_its_slot():
    assert playback_time(0, 25.0, 0.0) == pytest.approx(0.02)
    assert playback_time(10, 25.0, 1.5) == pytest.approx(1.5 + 10.5 / 25)
    assert playback_time(3, 30000 / 1001, -0.1) == pytest.approx(-0.1 + 3.5 * 1001 / 30000)


def best_effort_from_ffmpeg(frames: list[tuple[int | None, int | None]], trust_pts: bool) -> list[int | None]:
    """libavcodec's guess_correct_pts (decode.c), as written there: counters start at 0 (ours at 1 faulty
    pts without trust), last times at INT64_MIN; None is AV_NOPTS_VALUE."""
    low = -2**63
    faulty_pts, faulty_dts, last_pts, last_dts = (0 if trust_pts else 1), 0, low, low
    out = []
    for pts, dts in frames:
        if dts is not None:
            faulty_dts += dts <= last_dts
            last_dts = dts
        elif pts is not None:
            last_dts = pts
        if pts is not None:
            faulty_pts += pts <= last_pts
            last_pts = pts
        elif dts is not None:
            last_pts = dts
        out.append(pts if (faulty_pts <= faulty_dts or dts is None) and pts is not None else dts)
    return out


def test_frame_times_are_ffmpegs_best_effort_timestamps():
    rng = random.Random(2)
    time_base = Fraction(1, 90000)
    for trial in range(300):
        frames = []
        for k in range(rng.randrange(1, 12)):
            dts = None if rng.random() < 0.15 else k * 3000 + rng.choice([0, 0, 0, -6000])
            pts = None if rng.random() < 0.15 else (k + rng.choice([0, 1, 2, -1])) * 3000
            frames.append((pts, dts))
        for trust in (True, False):
            clock = BestEffortClock(time_base, trust_pts=trust)
            ours = [clock(SimpleNamespace(pts=p, dts=d)) for p, d in frames]
            expected = [None if t is None else float(t * time_base) for t in best_effort_from_ffmpeg(frames, trust)]
            assert ours == expected, (trial, trust, frames)


def test_avi_b_frames_are_timed_by_decoding_time():
    """AVI's shuffled "pts" (1, 2, 4, 3, ...): once they have gone backwards more often than the dts, the
    dts times the frames; without trust (trust_pts=False) from the first frame."""
    frames = [(1, 0), (2, 1), (4, 2), (3, 3), (6, 4), (5, 5), (8, 6), (7, 7)]
    clock = BestEffortClock(Fraction(1, 25))
    # pts 3 after 4 is the first fault (dts never go back): from there on, the dts
    assert [clock(SimpleNamespace(pts=p, dts=d)) * 25 for p, d in frames] == pytest.approx([1, 2, 4, 3, 4, 5, 6, 7])
    untrusting = BestEffortClock(Fraction(1, 25), trust_pts=False)
    assert [untrusting(SimpleNamespace(pts=p, dts=d)) * 25 for p, d in frames] == pytest.approx(
        [0, 1, 2, 3, 4, 5, 6, 7])


def shard_dataset(shards: dict[str, int], rank: int, processes: int, train: bool, seed: int = 7) -> ShardClipDataset:
    """A ShardClipDataset's state without reading shards: assigned() needs only these."""
    dataset = ShardClipDataset.__new__(ShardClipDataset)
    dataset.shards, dataset.rank, dataset.processes, dataset.train, dataset.seed = shards, rank, processes, train, seed
    return dataset


@pytest.mark.parametrize("processes,workers", [(1, 1), (1, 3), (2, 2), (3, 1), (2, 4), (4, 3)])
def test_every_shard_is_read_once_per_epoch_across_processes_and_workers(processes, workers):
    """Shards dealt to processes (shard i of the epoch's order to process i mod processes), then to each
    process's workers; a worker with fewer shards than its process has workers reads them all and keeps
    every k-th video: each video of each shard is read by exactly one worker."""
    shards = {f"train-{i:05d}.tar": 3 for i in range(7)}
    for epoch in range(3):
        readers = {}
        for rank in range(processes):
            dataset = shard_dataset(shards, rank, processes, train=True)
            for worker in range(workers):
                names, every, keep = dataset.assigned(epoch, worker, workers)
                assert 0 <= keep < every
                for name in names:
                    for video in range(shards[name]):
                        position = sum(shards[n] for n in names[:names.index(name)]) + video
                        if position % every == keep:
                            assert (name, video) not in readers
                            readers[(name, video)] = (rank, worker)
        assert len(readers) == sum(shards.values())  # every video once


def test_shard_order_is_drawn_per_epoch_alike_in_every_process():
    shards = {f"s{i}.tar": 1 for i in range(12)}
    first = [shard_dataset(shards, r, 2, train=True).assigned(0, 0, 1)[0] for r in range(2)]
    again = [shard_dataset(shards, r, 2, train=True).assigned(0, 0, 1)[0] for r in range(2)]
    assert first == again  # seeded by (seed, epoch): the same in every process and run
    order = [name for pair in zip(*first) for name in pair]  # process r holds order[r::2]
    assert sorted(order) == sorted(shards) and order != sorted(shards)
    next_epoch = [shard_dataset(shards, r, 2, train=True).assigned(1, 0, 1)[0] for r in range(2)]
    assert [name for pair in zip(*next_epoch) for name in pair] != order  # each epoch draws another
    other_seed = shard_dataset(shards, 0, 2, train=True, seed=8).assigned(0, 0, 1)[0]
    assert other_seed != first[0]
    # evaluation streams the shards in sorted order, every epoch
    assert shard_dataset(shards, 1, 2, train=False).assigned(5, 0, 1) == (sorted(shards)[1::2], 1, 0)
    assert shard_dataset(shards, 0, 1, train=False).assigned(0, 1, 2) == (sorted(shards)[1::2], 1, 0)
    assert shard_dataset({"a.tar": 4}, 0, 1, train=False).assigned(0, 2, 3) == (["a.tar"], 3, 2)


def test_shards_of_records_in_order_of_first_appearance():
    records = [VideoRecord(p, "x", "train", "g", 1, 25.0, 0.04) for p in (
        "train-00001.tar:512:100:a.avi", "train-00000.tar:0:10:b.avi", "train-00001.tar:1024:5:c.mp4")]
    assert list(shards_of(records).items()) == [("train-00001.tar", 2), ("train-00000.tar", 1)]


def test_a_manifest_path_names_where_its_bytes_are(tmp_path):
    assert video_source("/data", "train-00003.tar:1536:2048:0000001_v.avi") == ShardMember(
        str(Path("/data") / "train-00003.tar"), 1536, 2048, "0000001_v.avi")
    assert video_source("https://host/d/", "s.tar:0:7:x.avi") == ShardMember("https://host/d/s.tar", 0, 7, "x.avi")
    assert video_source("/data", "/cache/x-00000.arrow:41:video:folder/a.mp4") == ArrowRow(
        "/cache/x-00000.arrow", 41, "video", "folder/a.mp4")
    assert video_source("/data", "https://cdn/v.mp4") == RemoteVideo("https://cdn/v.mp4")
    assert video_source("hf://datasets/me/d", "Jump/a.avi") == RemoteVideo("hf://datasets/me/d/Jump/a.avi")
    assert video_source(tmp_path, "Jump/a.avi") == tmp_path / "Jump" / "a.avi"
    assert video_source("/data", "a:b.avi") == Path("/data/a:b.avi")  # a colon alone is a file name
    assert is_url("s3://b/k") and is_url("file:///x") and not is_url("/x/y") and not is_url(Path("http://x"))
    assert not is_url("C:/videos") and not is_url("://x")
    assert join("https://h/d//", "a.tar") == "https://h/d/a.tar" and join("/d", "a.tar") == Path("/d/a.tar")
    member = ShardMember(str(tmp_path / "s.tar"), 3, 4, "x.avi")
    (tmp_path / "s.tar").write_bytes(b"0123456789")
    assert member.open().read() == b"3456" and str(member) == f"{tmp_path / 's.tar'}:x.avi"


def test_a_training_window_is_drawn_as_defined():
    """Stride s ~ U(sample_rate, max_stride), as a fraction of denominator <= 1000; the window lasts
    clip x s / sample_rate and starts ~ U(0, room): the draws of `random`, in that order."""
    dataset = ClipDataset(RECORDS, "root", {}, SPEC, train=True, decoder=decode_pyav, max_stride=6)
    for seed in range(20):
        random.seed(seed)
        stride = Fraction(random.uniform(2, 6)).limit_denominator(1000)
        length = Fraction(8, 25) * stride / 2
        start = Fraction(random.uniform(0, max(1.2 - float(length), 0)))
        random.seed(seed)
        assert dataset.window(0) == (start, start + length), seed
    whole = PreprocessSpec(4, 2, 32, (32, 32), (0.5,) * 3, (0.5,) * 3, whole_video=True)
    assert ClipDataset(RECORDS, "root", {}, whole, train=True, decoder=decode_pyav).window(1) == (0, Fraction(1.7))


def test_as_many_shards_as_workers_gives_each_worker_its_own():
    shards = {f"s{i}.tar": 5 for i in range(3)}
    dataset = shard_dataset(shards, 0, 1, train=False)
    assert [dataset.assigned(0, w, 3) for w in range(3)] == [([f"s{w}.tar"], 1, 0) for w in range(3)]


def test_a_url_root_keeps_its_last_folder():
    assert join("https://host/X/", "a.tar") == "https://host/X/a.tar" and join("s3://b/XX", "a") == "s3://b/XX/a"
