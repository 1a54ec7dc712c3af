"""data.hf_dataset.streaming — `datasets` streams a videofolder dataset from the local stand-in Hub: train.py
fine-tunes and evaluates on it with nothing downloaded ahead; the stream is the same videos, labels and clips
as the same set in shards (local and over HTTP); processes and DataLoader workers read disjoint parts."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import OUR_TO_THEIRS, REPO, REPO_ID, hub_files, run_main, talk_to_hub, tiny_config_dict, write_config
from fake_hub import serve_hub
from http_files import serve_folder

from video_classifier.data.decoding import choose_decoder
from video_classifier.data.hf_source import HfStreamClipDataset
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import PreprocessSpec
from video_classifier.data.shards import ShardClipDataset, write_shards

SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.5,) * 3, std=(0.5,) * 3, min_scale=1.0, max_scale=1.25)
DECODE = choose_decoder("auto").decode
EPOCHS = 2


@pytest.fixture(scope="module")
def hub(videofolder, tmp_path_factory):
    """The videofolder on the stand-in Hub, this process talking to it (datasets included)."""
    import datasets.config

    cache = tmp_path_factory.mktemp("stream-cache")
    with serve_hub(hub_files(videofolder)) as server, pytest.MonkeyPatch.context() as patch:
        talk_to_hub(patch, server, cache / "hub")
        patch.setattr(datasets.config, "HF_ENDPOINT", server.url)
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
        yield server


def streamed_videos(requests: list) -> Counter:
    """Videos of the train split fetched, per file."""
    return Counter(path.rsplit("/", 1)[1] for method, path in requests
                   if method == "GET" and "/resolve/" in path and "/train/" in path and path.endswith(".avi"))


@pytest.fixture(scope="module")
def streamed_run(hub, tmp_path_factory):
    """prepare_data.py then train.py on the Hub dataset, streaming: (config's folder, requests per step)."""
    tmp = tmp_path_factory.mktemp("streamed-run")
    data = tiny_config_dict(tmp)
    data["data"].update(source="hf_dataset", hf_dataset={"path": REPO_ID, "splits": OUR_TO_THEIRS, "streaming": True})
    data["train"]["epochs"] = EPOCHS
    config = write_config(tmp / "config.yaml", data)
    hub.requests.clear()
    prepared = run_main("prepare_data.py", "--config", str(config))
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    listing = list(hub.requests)
    hub.requests.clear()
    result = run_main("train.py", "--config", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, listing, list(hub.requests), result.stdout


def test_train_py_fine_tunes_and_evaluates_on_a_streamed_hub_dataset(streamed_run, tiny_workspace):
    tmp, listing, training, stdout = streamed_run
    label2id, records = load_prepared(tmp / "data")
    folder_labels, folder_records = load_prepared(tiny_workspace / "data")
    assert label2id == folder_labels
    by_name = {Path(r.path).name: r for r in folder_records}
    assert {(Path(r.path).name, r.label, r.split) for r in records} == \
        {(n, r.label, r.split) for n, r in by_name.items()}
    stream = json.loads((tmp / "data" / "stream.json").read_text())
    assert stream["path"] == REPO_ID and len(stream["revision"]) == 40  # pinned to the commit listed
    for r in records:  # every video by its hf:// URL at that commit; only val and test were probed
        assert r.path.startswith(f"hf://datasets/{REPO_ID}@{stream['revision']}/{OUR_TO_THEIRS[r.split]}/")
        twin = by_name[Path(r.path).name]
        assert (r.frames, r.fps, r.duration) == ((0, 0.0, 0.0) if r.split == "train" else
                                                 (twin.frames, twin.fps, twin.duration))
    assert not list((tmp / "data").rglob("*.avi"))  # nothing copied
    # prepare read the metadata, not the training videos; training streamed each of them once per epoch
    assert not streamed_videos(listing) and any("metadata.csv" in path for _, path in listing)
    train_names = {Path(r.path).name for r in records if r.split == "train"}
    assert streamed_videos(training) == Counter({name: EPOCHS for name in train_names})
    assert "HfStreamClipDataset streaming someone/tiny-videos@" in stdout
    metrics = json.loads((tmp / "run" / "metrics.json").read_text())
    for split in ("val", "test"):
        videos = sum(r.split == split for r in folder_records)
        assert metrics[split]["videos"] == videos and not metrics[split]["videos_left_out"]
        assert metrics[split]["clips"] == 3 * videos  # 1.2 s videos, 0.32 s clips: 3 uniform clips each


def test_the_stream_is_the_shards_videos_labels_and_clips(streamed_run, tiny_workspace, tmp_path):
    """Every uniform clip of the streamed train split (train=False) against the same set written as shards
    (prepare_data.py --shards of the streamed folder), read locally and over HTTP: the same labels and clip counts per video, and the same pixels."""
    tmp = streamed_run[0]
    label2id, records = load_prepared(tmp / "data")
    train = [r for r in records if r.split == "train"]
    streamed = list(HfStreamClipDataset(tmp / "data", train, label2id, SPEC, train=False, decoder=DECODE))
    # the streamed set written as shards: each video fetched from the Hub, its header read there
    shards = write_shards(tmp / "data", tmp_path / "shards", 0.05)
    _, shard_records = load_prepared(shards)
    shard_train = [r for r in shard_records if r.split == "train"]
    folder = {Path(r.path).name: r for r in load_prepared(tiny_workspace / "data")[1]}
    assert all((r.frames, r.fps, r.duration) == (folder[n].frames, folder[n].fps, folder[n].duration)
               for r, n in zip(shard_train, (Path(t.path).name for t in train)))

    def per_video(items, rows, names):
        clips = {}
        for item in items:
            clips.setdefault(names[item["video_index"]], []).append((item["clip_index"], item["label"], item["video"]))
        return {name: sorted(c, key=lambda x: x[0]) for name, c in clips.items()}

    ours = per_video(streamed, train, [Path(r.path).name for r in train])
    with serve_folder(tmp_path) as server:
        for root in (shards, f"{server.url}/shards"):
            items = list(ShardClipDataset(root, shard_train, label2id, SPEC, train=False, decoder=DECODE))
            theirs = per_video(items, shard_train, [Path(r.path).name for r in train])
            assert set(theirs) == set(ours) and len(ours) == len(train)
            for name, clips in ours.items():
                assert [(c, label) for c, label, _ in clips] == [(c, label) for c, label, _ in theirs[name]]
                assert len(clips) == 3
                assert all(torch.equal(a[2], b[2]) for a, b in zip(clips, theirs[name]))


def test_processes_and_workers_read_disjoint_parts_each_epoch(streamed_run, monkeypatch):
    """Two processes (RANK/WORLD_SIZE as torchrun sets them) x two DataLoader workers: one shard (a videofolder's
    metadata.csv) split by split_dataset_by_node into four nodes, which together read each video once per epoch,
    in an order that changes with the epoch."""
    tmp = streamed_run[0]
    label2id, records = load_prepared(tmp / "data")
    train = [r for r in records if r.split == "train"]
    orders = []
    for epoch in range(2):
        seen = []
        for rank in (0, 1):
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORLD_SIZE", "2")
            stream = HfStreamClipDataset(tmp / "data", train, label2id, SPEC, train=True, decoder=DECODE,
                                         shuffle_buffer=8, seed=3)
            assert stream.stream.num_shards == 1
            stream.set_epoch(epoch)
            items = list(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2))
            mine = [i["video_index"] for i in items]
            assert len(mine) == len(set(mine)) == len(train) // 2  # an even half each (16 rows, 4 nodes)
            assert all(i["label"] == label2id[train[i["video_index"]].label] for i in items)
            seen.append(mine)
        assert not set(seen[0]) & set(seen[1])
        assert sorted(seen[0] + seen[1]) == list(range(len(train)))
        orders.append(seen)
    assert orders[0] != orders[1]


def test_eval_py_on_the_unprobed_streamed_split_is_one_line(streamed_run):
    tmp = streamed_run[0]
    result = run_main("eval.py", "--config", str(tmp / "config.yaml"), "--split", "train")
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "streamed, never probed" in message


def test_streaming_needs_the_datasets_splits(tmp_path):
    data = tiny_config_dict(tmp_path)
    data["data"].update(source="hf_dataset", hf_dataset={"path": REPO_ID, "streaming": True})
    result = run_main("prepare_data.py", "--config", str(write_config(tmp_path / "config.yaml", data)))
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "data.hf_dataset.splits" in message and "streaming" in message


def test_a_local_dataset_streams_and_a_broken_training_video_is_left_out(videofolder, tmp_path):
    """A local videofolder streamed (no Hub, no commit): a training video that is not a video passes the
    prepare step (training videos are not read there) and is left out of the stream, listed with its reason."""
    import shutil

    from video_classifier.data.clips import DecodeFailures

    dataset = tmp_path / "videos"
    shutil.copytree(videofolder, dataset)
    broken = sorted((dataset / "train").glob("*.avi"))[0]
    broken.write_bytes(b"not a video" * 100)
    data = tiny_config_dict(tmp_path)
    data["data"].update(source="hf_dataset",
                        hf_dataset={"path": str(dataset), "splits": OUR_TO_THEIRS, "streaming": True})
    result = run_main("prepare_data.py", "--config", str(write_config(tmp_path / "config.yaml", data)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "data" / "stream.json").read_text())["revision"] is None
    label2id, records = load_prepared(tmp_path / "data")
    train = [r for r in records if r.split == "train"]
    assert str(broken) in {r.path for r in train}
    failures = DecodeFailures(tmp_path / "failures.csv")
    stream = HfStreamClipDataset(tmp_path / "data", train, label2id, SPEC, train=True, decoder=DECODE,
                                 failures=failures)
    items = list(stream)
    assert sorted(i["video_index"] for i in items) == [i for i, r in enumerate(train) if r.path != str(broken)]
    assert DecodeFailures.summary(tmp_path / "failures.csv")["train"]["videos"] == [str(broken)]


def test_a_streamed_dataset_offline_is_one_line(hub, tmp_path, monkeypatch):
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    data = tiny_config_dict(tmp_path)
    data["data"].update(source="hf_dataset", hf_dataset={"path": REPO_ID, "splits": OUR_TO_THEIRS, "streaming": True})
    result = run_main("prepare_data.py", "--config", str(write_config(tmp_path / "config.yaml", data)))
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and REPO_ID in message and "HF_HUB_OFFLINE" in message


def test_torchrun_processes_stream_disjoint_halves(videofolder, tmp_path):
    """torchrun, 2 processes x 2 DataLoader workers, 2 epochs, a local videofolder streamed: per epoch the
    processes read disjoint halves that together are every training video once."""
    data = tiny_config_dict(tmp_path)
    data["data"].update(source="hf_dataset",
                        hf_dataset={"path": str(videofolder), "splits": OUR_TO_THEIRS, "streaming": True})
    assert run_main("prepare_data.py", "--config", str(write_config(tmp_path / "config.yaml", data))).returncode == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "tests" / "shard_ranks.py"), str(tmp_path / "data"), str(tmp_path), "hf"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    train = sum(r.split == "train" for r in load_prepared(tmp_path / "data")[1])
    seen = {rank: json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)}
    for epoch in range(2):
        assert len(seen[0][epoch]) == len(seen[1][epoch]) == train // 2
        assert sorted(seen[0][epoch] + seen[1][epoch]) == list(range(train))
    assert seen[0][0] != seen[0][1]
