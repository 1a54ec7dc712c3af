"""A list of the user's videos may name http(s) URLs: they are checked, prepared and decoded by byte ranges
(fsspec's file object handed to PyAV / torchcodec), never downloaded whole."""

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import tiny_config_dict, write_config
from http_files import serve_folder

from video_classifier.core.config import load_config
from video_classifier.data.clips import decode_clip
from video_classifier.data.datasets import ClipDataset
from video_classifier.data.decoding import decode_pyav, decode_torchcodec, torchcodec_problem
from video_classifier.data.manifest import load_prepared
from video_classifier.data.prepare import prepare
from video_classifier.data.preprocessing import PreprocessSpec, clip_frame_indices, exact_fps
from video_classifier.data.storage import RemoteVideo

DECODERS = [pytest.param(decode_pyav, id="pyav"),
            pytest.param(decode_torchcodec, id="torchcodec",
                         marks=[pytest.mark.torchcodec,
                                pytest.mark.skipif(torchcodec_problem() is not None, reason="torchcodec does not load")])]
SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.5,) * 3, std=(0.5,) * 3)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """60 s of 160x120 mpeg4 at 25 fps, keyframes every 25 frames, each frame distinct (about 7 MB)."""
    path = tmp_path_factory.mktemp("long") / "long.avi"
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (8, 120, 160, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 160, 120, "yuv420p", 1_000_000
        stream.codec_context.gop_size = 25
        for i in range(1500):
            frame = np.roll(noise[i % 8], i, axis=1)
            frame[:8, :8] = i % 256  # a corner that tells the frames apart
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("decode", DECODERS)
def test_one_clip_of_a_long_remote_video_reads_a_small_part_of_it(long_video, decode):
    indices = clip_frame_indices(Fraction(30), Fraction(30) + Fraction(64, 25), exact_fps(25.0), 1500, 16)
    local = decode(long_video, indices, 25.0)
    with serve_folder(long_video.parent) as server:
        remote = decode_clip(decode, RemoteVideo(f"{server.url}/{long_video.name}"), indices, 25.0)
        sent, size = server.sent[long_video.name], long_video.stat().st_size
    assert torch.equal(remote, local)
    print(f"{decode.__name__}: {sent} of {size} bytes read for one clip ({sent / size:.1%})")
    if decode is decode_pyav:
        # FFmpeg's probing of the first blocks (about 0.9 MB here), the AVI index, and the 256 KiB blocks
        # around 30-32.56 s: about 23% of the file (1.7 of 7.5 MB) in our runs
        assert 0 < sent < size / 3
    else:
        # torchcodec's exact seek mode (the one that gives a player's frames on variable-rate videos) scans
        # every packet first, so it reads the whole file (120% of it in our runs: blocks read again)
        assert sent >= size


def test_a_list_of_urls_is_checked_prepared_and_decoded_in_place(tiny_workspace, tmp_path):
    label2id, records = load_prepared(tiny_workspace / "data")
    folder = tiny_workspace / "data"
    with serve_folder(folder) as server:
        rows = [{"path": f"{server.url}/{r.path}", "label": r.label, "split": r.split} for r in records]
        rows.append({"path": f"{server.url}/train/missing.avi", "label": records[0].label, "split": "train"})
        with open(tmp_path / "videos.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "label", "split"])
            writer.writeheader()
            writer.writerows(rows)
        data = tiny_config_dict(tmp_path)
        data["data"].update(source="folder", videos=str(tmp_path / "videos.csv"), root=str(tmp_path / "prepared"))
        prepare(load_config(write_config(tmp_path / "config.yaml", data)).data)
        rejected = list(csv.DictReader(open(tmp_path / "prepared" / "rejected.csv")))
        assert [r["path"] for r in rejected] == [f"{server.url}/train/missing.avi"]
        assert "not found (HTTP 404" in rejected[0]["reason"]
        remote_labels, remote = load_prepared(tmp_path / "prepared")
        assert remote_labels == label2id
        assert [(r.path, r.frames, r.fps) for r in remote] == [(f"{server.url}/{r.path}", r.frames, r.fps)
                                                              for r in records]
        val = [r for r in records if r.split == "val"][:2]
        local = ClipDataset(val, folder, label2id, SPEC, train=False, decoder=decode_pyav)
        over_http = ClipDataset([r for r in remote if r.split == "val"][:2], tmp_path / "prepared", label2id, SPEC,
                                train=False, decoder=decode_pyav)
        assert len(local) == len(over_http) == 6
        for i in range(len(local)):
            assert torch.equal(local[i]["video"], over_http[i]["video"])
    assert json.loads((tmp_path / "prepared" / "labels.json").read_text())["label2id"] == label2id
