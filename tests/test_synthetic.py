import re

import numpy as np

from video_classifier.core.config import SyntheticConfig
from video_classifier.data import synthetic
from video_classifier.data.manifest import load_prepared, probe_video

SMALL = SyntheticConfig(width=64, height=48, fps=25, seconds=1.0, train_groups=2, val_groups=1, test_groups=1,
                        clips_per_group=2, seed=0)


def test_plan_layout_and_group_split():
    specs = synthetic.plan(SMALL)
    assert len(synthetic.CLASSES) >= 6
    assert len(specs) == len(synthetic.CLASSES) * 4 * 2
    for spec in specs:
        assert re.fullmatch(rf"{spec.split}/{spec.label}/v_{spec.label}_g\d\d_c\d\d\.avi", spec.relpath)
    groups = {split: {s.group for s in specs if s.split == split} for split in ("train", "val", "test")}
    assert groups == {"train": {1, 2}, "val": {3}, "test": {4}}


def test_render_is_deterministic_per_seed():
    spec = synthetic.plan(SMALL)[0]
    a, b = synthetic.render(spec, SMALL), synthetic.render(spec, SMALL)
    assert a.shape == (25, 48, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    other_seed = SyntheticConfig(**{**SMALL.__dict__, "seed": 1})
    assert not np.array_equal(a, synthetic.render(spec, other_seed))


def test_frames_move_and_appearance_varies():
    specs = [s for s in synthetic.plan(SMALL) if s.split == "train" and s.clip == 1]
    first_frames = []
    for spec in specs:
        frames = synthetic.render(spec, SMALL).astype(np.float32)
        assert np.abs(frames[-1] - frames[0]).mean() > 5, f"{spec.label} does not move"
        first_frames.append(frames[0])
    # two videos of one class look different (random texture)
    assert np.abs(first_frames[0] - first_frames[1]).mean() > 10


def test_prepared_synthetic_folder(tiny_workspace):
    root = tiny_workspace / "data"
    label2id, records = load_prepared(root)
    assert sorted(label2id) == synthetic.CLASSES
    assert list(label2id.values()) == list(range(len(label2id)))
    assert {r.split for r in records} == {"train", "val", "test"}
    record = records[0]
    assert (record.frames, record.fps, record.duration) == (30, 25.0, 1.2)
    assert probe_video(root / record.path) == (30, 25.0, 1.2)
    # a group (scene) is in one split only
    seen = {}
    for r in records:
        assert seen.setdefault((r.label, r.group), r.split) == r.split
