"""infer.py --explain for each of the five architectures: each token layout (model/token_grid.py) checked by
changing one tubelet of the input and finding the grid cell that changed; the MP4's frames, rate and
size against the source's; the map's shape; occlusion's tubes where the input is already the baseline
give exactly nothing, and a map changes when its evidence is masked."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import run_main, tiny_config_dict, write_config

from video_classifier.core.config import TinyModelConfig
from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import load_prepared, probe_video
from video_classifier.model.model_spec import ARCHITECTURES, tiny_model
from video_classifier.model.modeling import load_for_training, load_trained
from video_classifier.model.token_grid import grid_module, grid_of, grid_shape, to_grid
from video_classifier.serve.explain import explain, gradcam_map, occlusion_map

TINY = TinyModelConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32,
                       num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def model_folder(request, tiny_workspace, tmp_path_factory) -> tuple[str, Path]:
    """A tiny model of each architecture with a (random) head for the tiny set's classes, saved as a run is."""
    root = tmp_path_factory.mktemp(request.param)
    backbone, processor = tiny_model(replace(TINY, architecture=request.param), seed=0)
    backbone.save_pretrained(root / "checkpoint")
    processor.save_pretrained(root / "checkpoint")
    label2id, _ = load_prepared(tiny_workspace / "data")
    torch.manual_seed(0)
    model = load_for_training(str(root / "checkpoint"), label2id)
    model.save_pretrained(root / "run")
    processor.save_pretrained(root / "run")
    return request.param, root / "run"


def test_each_token_layout_puts_a_changed_tubelet_in_its_grid_cell(model_folder):
    """One layer: before attention mixes tokens, a change to one tubelet's pixels changes that token most."""
    _, folder = model_folder
    model, spec = load_trained(str(folder), sample_rate=2)
    frames, size = TINY.num_frames, TINY.image_size
    shape = grid_shape(model.config, frames, size, size)
    step_t, step = frames // shape[0], size // shape[1]
    seen: list[torch.Tensor] = []
    hook = grid_module(model).register_forward_hook(lambda module, args, output: seen.append(output.detach()))
    x = torch.randn(1, frames, 3, size, size, generator=torch.Generator().manual_seed(0))
    try:
        for cell in [(0, 0, 0), (shape[0] - 1, 1, 3), (shape[0] // 2, 3, 2)]:
            y = x.clone()
            t, h, w = cell
            y[:, t * step_t:(t + 1) * step_t, :, h * step:(h + 1) * step, w * step:(w + 1) * step] += 3.0
            seen.clear()
            with torch.no_grad():
                model(**spec.inputs(x))
                model(**spec.inputs(y))
            change = (to_grid(seen[0], grid_of(model), shape) - to_grid(seen[1], grid_of(model), shape)).norm(dim=1)[0]
            assert np.unravel_index(int(change.argmax()), shape) == cell
    finally:
        hook.remove()


def test_occlusion_gives_nothing_where_the_input_is_already_the_baseline(model_folder):
    _, folder = model_folder
    model, spec = load_trained(str(folder), sample_rate=2)
    pixels = torch.randn(1, 3, TINY.num_frames, TINY.image_size, TINY.image_size,
                         generator=torch.Generator().manual_seed(1))
    half = TINY.image_size // 2
    pixels[..., :half, :half] = 0.0  # the normalised mean colour: occluding it changes nothing
    found = occlusion_map(model, spec, pixels, target=0)
    assert found.shape == (1, TINY.num_frames, TINY.image_size, TINY.image_size)
    assert np.abs(found[..., :half, :half]).max() < 1e-5
    assert found[..., half:, :].max() > 10 * np.abs(found[..., :half, :half]).max()


@pytest.mark.parametrize("method", ["hirescam", "gradcam"])
def test_a_cam_map_changes_when_its_evidence_is_masked(model_folder, method):
    _, folder = model_folder
    model, spec = load_trained(str(folder), sample_rate=2)
    pixels = torch.randn(1, 3, TINY.num_frames, TINY.image_size, TINY.image_size,
                         generator=torch.Generator().manual_seed(2))
    before = gradcam_map(model, spec, pixels, target=1, method=method)
    assert before.shape == (1, TINY.num_frames, TINY.image_size, TINY.image_size)
    assert 0 <= before.min() and before.max() <= 1 + 1e-6
    t, h, w = np.unravel_index(int(before.argmax()), before.shape[1:])
    masked = pixels.clone()
    masked[..., max(h - 8, 0):h + 8, max(w - 8, 0):w + 8] = 0.0
    after = gradcam_map(model, spec, masked, target=1, method=method)
    assert np.abs(after - before).max() > 0.05


def test_infer_explain_writes_a_playable_video_of_the_source_length(model_folder, tiny_workspace, tmp_path):
    architecture, folder = model_folder
    _, records = load_prepared(tiny_workspace / "data")
    video = tiny_workspace / "data" / records[0].path
    config = write_config(tmp_path / "c.yaml", tiny_config_dict(tmp_path))
    result = run_main("infer.py", "--config", str(config), "--model", str(folder), str(video), "--explain",
                      "--out", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    files = json.loads(result.stdout)[0]["files"]
    frames, fps, duration = probe_video(video)
    with av.open(files["mp4"]) as container:
        stream = container.streams.video[0]
        written = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(fps)
    with av.open(str(video)) as container:
        height, width = container.streams.video[0].height, container.streams.video[0].width
    assert len(written) == frames and written[0].shape == (height // 2 * 2, width // 2 * 2, 3)
    saved = json.loads(Path(files["json"]).read_text())
    assert saved["frames"] == sorted(saved["frames"]) and len(saved["curve"]) == len(saved["frames"])
    assert max(saved["curve"]) == pytest.approx(1.0) and saved["times"][-1] < duration
    for kind in ("png", "curve"):
        assert Path(files[kind]).stat().st_size > 1000
    model, spec = load_trained(str(folder), sample_rate=2)
    found = explain(model, spec, video, choose_decoder("pyav"), "hirescam")
    assert found.maps.shape == (len(found.frames), height, width) and found.label == saved["label"], architecture


def test_explanation_metrics_on_worked_examples():
    from video_classifier.serve import explain_metrics as m

    maps = np.zeros((2, 4, 6))
    maps[1, 2, 3] = 1.0  # the maximum: frame 1, row 2, column 3
    maps[0, 0, 0] = 0.5
    boxes = [(0, 0, 2, 2), (2, 2, 4, 5)]  # (top, left, bottom, right), exclusive
    assert m.pointing_hit(maps, boxes)
    assert not m.pointing_hit(maps, [boxes[0], (0, 0, 2, 2)])
    assert not m.pointing_hit(maps, [boxes[0], None])
    assert m.mass_inside(maps, boxes) == pytest.approx(1.0)
    assert m.mass_inside(maps, [None, boxes[1]]) == pytest.approx(1.0 / 1.5)
    # chance: box areas 4 and 6 of 24 pixels -> (4/24 + 6/24) / 2
    assert m.box_share(boxes, maps.shape) == pytest.approx((4 + 6) / 24 / 2)
    seen = np.zeros((4, 6), dtype=bool)
    seen[:, :3] = True  # the model sees the left half: boxes cover 4 and 2 of its 12 pixels
    assert m.box_share(boxes, maps.shape, seen) == pytest.approx((4 + 2) / 12 / 2)
    assert m.time_share(np.array([0.0, 0.5, 1.0, 1.5]), np.array([1.0, 1.0, 2.0, 0.0]), (0.5, 1.5)) == 0.75
    # cells of 1 x 2 x 3 over a (2, 4, 6) map: a 2 x 2 x 2 grid; cell (1, 1, 1) holds the maximum
    order = m.cell_ranking(maps, (1, 2, 3))
    assert order[0] == np.ravel_multi_index((1, 1, 1), (2, 2, 2)) and order[1] == 0
    assert sorted(m.cell_ranking(maps, (1, 2, 3), np.random.default_rng(0))) == list(range(8))


def test_the_deletion_curve_hides_cells_in_order():
    from video_classifier.serve import explain_metrics as m

    pixels = torch.ones(3, 2, 4, 4)  # (C, T, h, w); cells of 1 x 2 x 2: 2 x 2 x 2 = 8 cells
    curve = m.deletion_curve(lambda x: float(x.sum()), pixels, np.arange(8), (1, 2, 2), steps=4)
    # each stage hides 2 more cells of 3 x 4 pixels each: 96, 72, 48, 24, 0
    assert curve.tolist() == [96.0, 72.0, 48.0, 24.0, 0.0]
    assert m.area(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert m.area(curve / 96) == pytest.approx(0.5)
