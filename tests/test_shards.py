"""data.source: shards — a prepared folder written as tar shards, read locally and over HTTP: the same
videos, labels, clips and frames as the folder; streaming split by worker and by process; one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_main, tiny_config_dict, write_config
from http_files import serve_folder

from video_classifier.core.errors import UserError
from video_classifier.data.datasets import ClipDataset, ViewDataset
from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import PreprocessSpec
from video_classifier.data.shards import ShardClipDataset, describe_shards, iter_shard, write_shards

SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.5,) * 3, std=(0.5,) * 3, min_scale=1.0, max_scale=1.25)
DECODE = choose_decoder("auto").decode


@pytest.fixture(scope="module")
def shards(tiny_workspace, tmp_path_factory):
    """The tiny prepared folder and its shards (0.05 MB: 2-3 videos each, 7 training shards)."""
    out = tmp_path_factory.mktemp("shards") / "tiny"
    write_shards(tiny_workspace / "data", out, 0.05)
    return tiny_workspace / "data", out


@pytest.fixture(scope="module")
def served(shards):
    with serve_folder(shards[1].parent) as server:
        yield server


def roots(shards, served):
    return {"local": shards[1], "http": f"{served.url}/{shards[1].name}"}


@pytest.mark.parametrize("where", ["local", "http"])
def test_shards_hold_the_folders_videos_labels_clips_and_frames(shards, served, where):
    folder = shards[0]
    root = roots(shards, served)[where]
    label2id, records = load_prepared(folder)
    shard_labels, shard_records = load_prepared(root)
    assert shard_labels == label2id
    fields = lambda r: (r.label, r.split, r.group, r.frames, r.fps, r.duration)  # noqa: E731
    for split in ("train", "val", "test"):  # written split by split, in the manifest's order
        assert [fields(r) for r in shard_records if r.split == split] == \
            [fields(r) for r in records if r.split == split]
    assert all(r.path.split(":")[0].endswith(".tar") for r in shard_records)
    val = [r for r in records if r.split == "val"]
    shard_val = [r for r in shard_records if r.split == "val"]
    # evaluation reads each video as one byte range: the same clips and views, pixel for pixel
    clips, shard_clips = (ClipDataset(rows, base, label2id, SPEC, train=False, decoder=DECODE)
                          for rows, base in ((val, folder), (shard_val, root)))
    assert len(clips) == len(shard_clips) == 3 * len(val)  # 1.2 s videos, 0.32 s clips: 3 uniform clips each
    views, shard_views = (ViewDataset(rows, base, label2id, SPEC, 5, 3, DECODE)
                          for rows, base in ((val, folder), (shard_val, root)))
    for i in (0, len(val) - 1):
        assert shard_views[i]["views"].shape == (15, 4, 3, 32, 32)
        assert torch.equal(views[i]["views"], shard_views[i]["views"])
        assert views[i]["label"] == shard_views[i]["label"]
    # the stream gives every uniform clip of every video: the same frames as the folder's ClipDataset
    stream = list(ShardClipDataset(root, shard_val, label2id, SPEC, train=False, decoder=DECODE))
    assert len(stream) == len(clips)
    expected = {(clips[i]["video_index"], clips[i]["clip_index"]): clips[i] for i in range(len(clips))}
    for item in stream:
        twin = expected.pop((item["video_index"], item["clip_index"]))
        assert torch.equal(item["video"], twin["video"]) and item["label"] == twin["label"]
    assert not expected


def test_training_stream_gives_each_video_once_per_epoch_shuffled(shards):
    _, root = shards
    label2id, records = load_prepared(root)
    train = [r for r in records if r.split == "train"]
    stream = ShardClipDataset(root, train, label2id, SPEC, train=True, decoder=DECODE, shuffle_buffer=4, seed=1)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    epochs = []
    for epoch in range(2):
        stream.set_epoch(epoch)
        items = list(loader)
        assert sorted(i["video_index"] for i in items) == list(range(len(train)))
        assert all(i["label"] == label2id[train[i["video_index"]].label] for i in items)
        assert all(i["video"].shape == (4, 3, 32, 32) and i["video"].dtype == torch.uint8 for i in items)
        epochs.append([i["video_index"] for i in items])
    assert epochs[0] != epochs[1]


def test_fewer_shards_than_workers_split_videos_and_keep_only_the_records(shards):
    _, root = shards
    label2id, records = load_prepared(root)
    first = [r for r in records if r.path.startswith("test-00000.tar:")]  # one shard, read by 2 workers
    assert len(first) >= 2
    stream = ShardClipDataset(root, first[1:], label2id, SPEC, train=True, decoder=DECODE, shuffle_buffer=0)
    assert [stream.assigned(0, worker, 2) for worker in (0, 1)] == [(["test-00000.tar"], 2, 0),
                                                                    (["test-00000.tar"], 2, 1)]
    items = list(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2))
    # each video of the records once (the one left out of them is not streamed)
    assert sorted(i["video_index"] for i in items) == list(range(len(first) - 1))


def test_a_shard_that_is_not_a_tar_and_a_url_that_404s_are_one_line_errors(shards, served, tmp_path):
    _, root = shards
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("index.json", "labels.json", "manifest.csv"):
        (broken / name).write_bytes((root / name).read_bytes())
    for shard in root.glob("*.tar"):  # every shard but one copied
        (broken / shard.name).write_bytes(b"<html>not a tar</html>" * 40 if shard.name == "val-00000.tar"
                                          else shard.read_bytes())
    with pytest.raises(UserError, match=r"^shard \S*/broken/val-00000\.tar is not a tar file") as err:
        describe_shards(broken)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match=r"^shard \S*/broken/val-00000\.tar is not a tar file"):
        list(iter_shard(str(broken / "val-00000.tar")))  # what a DataLoader worker meets mid-stream
    missing = f"{served.url}/nowhere"
    with pytest.raises(UserError, match=rf"{missing}/labels\.json not found \(HTTP 404") as err:
        load_prepared(missing)
    assert "\n" not in str(err.value)
    data = tiny_config_dict(tmp_path)
    data["data"].update(source="shards", root=missing)
    result = run_main("prepare_data.py", "--config", str(write_config(tmp_path / "config.yaml", data)))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {missing}/index.json not found (HTTP 404 or no such file): check " \
                                    "data.root, or run `python prepare_data.py --config <your config>` first"


def test_train_py_fine_tunes_and_evaluates_from_shards_over_http(shards, served, trained, tmp_path):
    """The same run as the `trained` fixture's (folder), from the shards over HTTP: the same videos and clips
    are evaluated, and the stock pipeline reads them too."""
    data = tiny_config_dict(tmp_path)
    data["data"].update(source="shards", root=roots(shards, served)["http"], num_workers=2)
    data["train"]["epochs"] = 1
    config = write_config(tmp_path / "config.yaml", data)
    assert run_main("prepare_data.py", "--config", str(config)).stdout.startswith(
        f"shards at {data['data']['root']}: 16 train videos in 7 shards")
    result = run_main("train.py", "--config", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ShardClipDataset streaming 7 training shards" in result.stdout
    # 16 videos / batch 4 = 4 steps for the one epoch
    assert "4 steps/epoch x 1 epochs = 4 steps" in result.stdout
    metrics = json.loads((Path(data["train"]["output_dir"]) / "metrics.json").read_text())
    folder = json.loads((trained[1] / "metrics.json").read_text())
    for split in ("val", "test"):
        assert metrics[split]["videos"] == folder[split]["videos"] == 8
        assert metrics[split]["clips"] == folder[split]["clips"] == 24 and not metrics[split]["videos_left_out"]
    assert metrics["test"]["pipeline_top1"] is not None and not metrics["test"]["pipeline_failed"]
    assert json.loads((Path(data["train"]["output_dir"]) / "labels.json").read_text())["label2id"] == \
        load_prepared(shards[0])[0]


def test_each_process_streams_a_disjoint_half_of_the_shards(shards, tmp_path):
    """torchrun, 2 processes x 2 DataLoader workers, 2 epochs: per epoch the processes read disjoint shards
    that together are all of them, each video once."""
    _, root = shards
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "tests" / "shard_ranks.py"), str(root), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    _, records = load_prepared(root)
    train = [r for r in records if r.split == "train"]
    shard_of = [r.path.split(":")[0] for r in train]
    seen = {rank: json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)}
    for epoch in range(2):
        videos = {rank: seen[rank][epoch] for rank in (0, 1)}
        shards_read = {rank: {shard_of[v] for v in videos[rank]} for rank in (0, 1)}
        assert not shards_read[0] & shards_read[1]
        assert shards_read[0] | shards_read[1] == set(shard_of)
        assert len(shards_read[0]) + len(shards_read[1]) == 7 and min(map(len, shards_read.values())) == 3
        assert sorted(videos[0] + videos[1]) == list(range(len(train)))
        for rank in (0, 1):  # a process reads all of its shards' videos
            assert len(videos[rank]) == sum(shard_of.count(s) for s in shards_read[rank])
    assert {shard_of[v] for v in seen[0][0]} != {shard_of[v] for v in seen[0][1]}  # dealt anew each epoch
