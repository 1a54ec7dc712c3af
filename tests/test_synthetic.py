import re

import numpy as np
import torch

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


def test_every_multi_label_video_has_its_square(monkeypatch):
    """The square is in every multi-label video, still where no Object label is: a pan alone (PanUp, a
    single-label class name too) gets a still square, so one frame does not tell pan-only folders apart."""
    config = SyntheticConfig(**{**SMALL.__dict__, "multi_label": True})
    drawn = {}
    real = synthetic._add_square

    def spy(frames, rng, direction, t):
        drawn[label] = direction
        return real(frames, rng, direction, t)

    monkeypatch.setattr(synthetic, "_add_square", spy)
    for label in synthetic.COMBINATIONS:
        synthetic.render(synthetic.VideoSpec("train", label, 1, 1), config)
    assert set(drawn) == set(synthetic.COMBINATIONS)
    for label, direction in drawn.items():
        objects = [synthetic.OBJECTS[p] for p in label.split("+") if p in synthetic.OBJECTS]
        assert direction == (objects[0] if objects else (0, 0)), label


def test_the_square_crosses_the_view_once_without_wrapping():
    """Its top-left corner moves its way in a straight line, at least half of it in view in every frame; the
    box the generator reports for each frame (explanations' ground truth) is where its pixels are."""
    t = torch.arange(50, dtype=torch.float32) / 25
    background = torch.zeros(50, 3, 96, 128)
    for direction in synthetic.OBJECTS.values():
        for seed in range(5):
            frames, boxes = synthetic._add_square(background, np.random.default_rng(seed), direction, t)
            covered = (frames != 0).any(1)  # the checkerboard's colour and its complement: never both black
            ys, xs = [], []
            for mask, box in zip(covered, boxes):
                rows, cols = torch.nonzero(mask.any(1)).flatten(), torch.nonzero(mask.any(0)).flatten()
                assert len(rows) and len(cols)
                assert box == (rows.min().item(), cols.min().item(), rows.max().item() + 1, cols.max().item() + 1)
                ys.append((rows.min() + rows.max()).item() / 2)
                xs.append((cols.min() + cols.max()).item() / 2)
            along = np.diff(xs if direction[0] else ys) * (direction[0] or direction[1])
            across = np.diff(ys if direction[0] else xs)
            assert (along >= -1).all() and along.sum() > 20, (direction, seed)  # one way, no jump back
            assert (np.abs(across) <= 1).all(), (direction, seed)
