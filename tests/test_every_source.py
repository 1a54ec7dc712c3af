"""The demo's own training options (configs/demo.yaml: temporal-scale jitter, scale jitter) train on every
source that can read the demo's videos besides the prepared folder `make demo` trains on, the config changed
only in where the data is, where the run goes, how long it runs and its evaluation views (1 x 1: they do not
depend on the source); and a stream's training clips are jittered as map-style ones are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import OUR_TO_THEIRS, REPO, run_main, tiny_config_dict

from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import PreprocessSpec
from video_classifier.data.shards import ShardClipDataset, write_shards

DECODE = choose_decoder("auto").decode


def sources(tiny_workspace: Path, videofolder: Path, tmp: Path) -> dict[str, list[str]]:
    """--set overrides that point the demo's config at the tiny set, as each source reads it."""
    shards = tmp / "shards"
    if not shards.exists():
        write_shards(tiny_workspace / "data", shards, 0.05)
    hf = {"path": str(videofolder), "splits": OUR_TO_THEIRS}
    streamed = f"data.hf_dataset={json.dumps({**hf, 'streaming': True})}"
    hf = f"data.hf_dataset={json.dumps(hf)}"
    return {
        "shards": ["data.source=shards", f"data.root={shards}"],
        "hf_dataset": ["data.source=hf_dataset", f"data.root={tmp / 'hf'}", hf],
        "hf_dataset streamed": ["data.source=hf_dataset", f"data.root={tmp / 'hf-stream'}", streamed],
    }


@pytest.mark.parametrize("source", ["shards", "hf_dataset", "hf_dataset streamed"])
def test_the_demo_config_trains_on_every_source(source, tiny_workspace, videofolder, tmp_path_factory):
    tmp = tmp_path_factory.getbasetemp() / "every-source"
    tmp.mkdir(exist_ok=True)
    run = tmp / ("run-" + source.replace(" ", "-"))
    tiny = tiny_config_dict(tmp)["model"]["checkpoint"]  # the tests' checkpoint folder, not the repo's
    overrides = [*sources(tiny_workspace, videofolder, tmp)[source], f"model.checkpoint={tiny}-demo",
                 f"train.output_dir={run}", "train.max_steps=2", "data.num_workers=0", "eval.num_clips=1",
                 "eval.num_crops=1"]
    argv = ["--config", str(REPO / "configs" / "demo.yaml"), *[a for o in overrides for a in ("--set", o)]]
    if source.startswith("hf_dataset"):
        prepared = run_main("prepare_data.py", *argv)
        assert prepared.returncode == 0, prepared.stderr[-2000:]
    result = run_main("train.py", *argv)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "training strides drawn from 2-" in result.stdout and "(train.max_stride: auto)" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["views"] == "1 clips x 1 crops" and metrics["test"]["videos"] == 8


class Recorded:
    """The decoder, recording the frame indices each clip asks for."""

    def __init__(self):
        self.asked: list[list[int]] = []

    def __call__(self, path, indices, fps):
        self.asked.append(list(indices))
        return DECODE(path, indices, fps)


def test_a_streamed_clip_stride_is_drawn_up_to_max_stride(tiny_workspace, tmp_path):
    """Training clips from shards: with max_stride 6 the frames of a clip are 2-6 apart (their gaps differ from
    clip to clip); without it, sample_rate apart."""
    write_shards(tiny_workspace / "data", tmp_path / "shards", 0.05)
    label2id, records = load_prepared(tmp_path / "shards")
    train = [r for r in records if r.split == "train"]
    spec = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                          mean=(0.5,) * 3, std=(0.5,) * 3)
    spans = {}
    for max_stride in (None, 6):
        decoder = Recorded()
        items = list(ShardClipDataset(tmp_path / "shards", train, label2id, spec, train=True, decoder=decoder,
                                      seed=0, max_stride=max_stride))
        assert len(items) == len(train) == len(decoder.asked)
        spans[max_stride] = [clip[-1] - clip[0] for clip in decoder.asked]
    # first to last frame of a window of 8 frames: 6-7 (where its start falls between frames); at stride 6 the
    # window is 3 times as long: up to 22
    assert set(spans[None]) <= {6, 7}
    assert all(6 <= s <= 22 for s in spans[6]) and len(set(spans[6])) >= 3 and max(spans[6]) >= 14
