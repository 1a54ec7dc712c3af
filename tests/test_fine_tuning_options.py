"""The fine-tuning options do what they say: layer decay's learning rates, label smoothing's and
mixup/cutmix's losses, drop path's config; and a run with all of them trains."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import transformers
from conftest import assert_metrics_add_up, tiny_config_dict, write_config
from transformers import TrainingArguments

import train as train_script
from video_classifier.core.config import Config, DataConfig, TrainConfig, _build
from video_classifier.core.errors import UserError
from video_classifier.data.datasets import ClipDataset, build_datasets, pipeline_stride
from video_classifier.data.manifest import VideoRecord
from video_classifier.data.preprocessing import Normalize, PreprocessSpec
from video_classifier.engine.trainer import VideoTrainer
from video_classifier.model.model_spec import ModelSpec, fine_tuning_overrides, layer_depths

SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.5,) * 3, std=(0.5,) * 3)
LAYERS = 3


def videomae() -> transformers.VideoMAEForVideoClassification:
    torch.manual_seed(0)
    return transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(
        image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=LAYERS,
        num_attention_heads=2, intermediate_size=64, num_labels=4))


def trainer(model, tmp_path: Path, **options) -> VideoTrainer:
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, weight_decay=0.05, report_to="none",
                             use_cpu=True)
    spec = ModelSpec(model.config.model_type, model.main_input_name, SPEC, dict(model.config.id2label))
    return VideoTrainer(model=model, args=args, spec=spec, train_options=TrainConfig(**options))


def batch(model) -> dict[str, torch.Tensor]:
    """A batch as the Trainer hands it to compute_loss: uint8 clips, labels."""
    torch.manual_seed(1)
    return {model.main_input_name: torch.randint(0, 256, (4, 4, 3, 32, 32), dtype=torch.uint8),
            "labels": torch.tensor([0, 1, 2, 3])}


def pixels(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's input for the batch's clips."""
    return Normalize(SPEC)(inputs["pixel_values"])


def test_layer_decay_puts_the_expected_learning_rate_on_each_layer(tmp_path):
    model = videomae()
    optimizer = trainer(model, tmp_path, layer_decay=0.5).create_optimizer()
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    top = LAYERS + 1
    for name, parameter in model.named_parameters():
        if name.startswith("videomae.embeddings"):
            depth = 0
        elif ".encoder.layer." in name:
            depth = int(name.split(".encoder.layer.")[1].split(".")[0]) + 1
        else:  # fc_norm, classifier
            depth = top
        assert rate[id(parameter)] == pytest.approx(1e-3 * 0.5 ** (top - depth)), name
        assert decay[id(parameter)] == (0.0 if name.endswith("bias") or "norm" in name else 0.05), name
    assert len(rate) == sum(1 for _ in model.parameters())


def test_layer_depths_follow_the_stacks_in_order():
    model = transformers.VideoPrismForVideoClassification(transformers.VideoPrismVisionConfig(
        image_size=32, num_frames=4, tubelet_size=[1, 8, 8], hidden_size=32, num_attention_heads=2,
        intermediate_size=64, num_spatial_layers=2, num_temporal_layers=2, num_labels=3))
    depths, top = layer_depths(model)
    assert top == 5  # embeddings 0, spatial 1-2, temporal 3-4, head 5
    spatial = {d for n, d in depths.items() if ".spatial_layers." in n}
    temporal = {d for n, d in depths.items() if ".temporal_layers." in n}
    assert spatial == {1, 2} and temporal == {3, 4}
    assert all(d == 5 for n, d in depths.items() if n.startswith("classifier"))


def test_without_options_the_loss_is_the_models_own(tmp_path):
    model = videomae()
    inputs = batch(model)
    ours = trainer(model, tmp_path).compute_loss(model, inputs)
    assert ours.item() == pytest.approx(model(pixel_values=pixels(inputs), labels=inputs["labels"]).loss.item(),
                                        abs=1e-6)


def test_label_smoothing_changes_the_loss_as_torchs_does(tmp_path):
    model = videomae()
    with torch.no_grad():
        model.classifier.weight.mul_(100)  # confident logits: smoothing then moves the loss visibly
    inputs = batch(model)
    ours = trainer(model, tmp_path, label_smoothing=0.2).compute_loss(model, inputs)
    logits = model(pixel_values=pixels(inputs)).logits
    expected = torch.nn.functional.cross_entropy(logits, inputs["labels"], label_smoothing=0.2)
    plain = torch.nn.functional.cross_entropy(logits, inputs["labels"])
    assert ours.item() == pytest.approx(expected.item(), abs=1e-6)
    assert abs(ours.item() - plain.item()) > 1e-3
    model.eval()  # evaluation loss: plain cross entropy
    assert trainer(model, tmp_path, label_smoothing=0.2).compute_loss(model, inputs).item() == \
        pytest.approx(model(pixel_values=pixels(inputs), labels=inputs["labels"]).loss.item(), abs=1e-6)


def test_mixup_mixes_clips_and_labels_alike(tmp_path):
    model = videomae()
    inputs = batch(model)
    mixing = trainer(model, tmp_path, mixup_alpha=0.8)
    torch.manual_seed(3)
    mixed, targets = mixing.mix(__import__("torchvision").tv_tensors.Video(pixels(inputs)), inputs["labels"])
    # torchvision's MixUp pairs each clip with the next one (rolled by one) with one weight for all
    lam = targets[0, 0].item()
    assert 0 < lam < 1 and torch.allclose(targets.sum(1), torch.ones(4))
    expected = lam * pixels(inputs) + (1 - lam) * pixels(inputs).roll(1, 0)
    assert torch.allclose(mixed.as_subclass(torch.Tensor), expected, atol=1e-5)
    torch.manual_seed(3)
    loss = mixing.compute_loss(model, inputs)
    logits = model(pixel_values=expected).logits
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, targets).item(), abs=1e-5)


def test_cutmix_pastes_one_box_in_every_frame_and_weighs_labels_by_its_area(tmp_path):
    """torchvision's CutMix on a (B, T, C, H, W) batch: one box per batch, the same in every frame, filled
    from the clip rolled by one; each target row is (1 - area) for the clip's own class and the box's area
    for the other's, computed here from the pixels, not from torchvision."""
    model = videomae()
    inputs = batch(model)
    original = pixels(inputs)
    torch.manual_seed(5)
    mixed, targets = trainer(model, tmp_path, cutmix_alpha=1.0).mix(
        __import__("torchvision").tv_tensors.Video(original), inputs["labels"])
    mixed = mixed.as_subclass(torch.Tensor)
    other = original.roll(1, 0)
    from_other = (mixed == other).all(2) & (mixed != original).any(2)  # (B, T, H, W): pixels taken from the pair
    box = from_other[0, 0]
    assert box.any() and not box.all()
    assert all(torch.equal(from_other[b, t], box) for b in range(4) for t in range(4))  # one box, every frame
    rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
    assert box[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()  # a rectangle
    assert torch.equal(mixed[..., ~box], original[..., ~box])  # outside it, each clip's own pixels
    area = box.float().mean().item()
    labels = inputs["labels"]
    expected = torch.zeros(4, 4)
    expected[torch.arange(4), labels] += 1 - area
    expected[torch.arange(4), labels.roll(1)] += area
    assert torch.allclose(targets, expected, atol=1e-6)


def test_drop_path_where_the_architecture_has_it():
    assert fine_tuning_overrides(transformers.TimesformerConfig(), TrainConfig(drop_path=0.1)) == \
        {"drop_path_rate": 0.1}
    assert fine_tuning_overrides(transformers.VJEPA2Config(), TrainConfig(drop_path=0.2)) == {"drop_path_rate": 0.2}
    with pytest.raises(UserError, match="videomae has no stochastic depth"):
        fine_tuning_overrides(transformers.VideoMAEConfig(), TrainConfig(drop_path=0.1))
    assert fine_tuning_overrides(transformers.VideoMAEConfig(), TrainConfig()) == {}


def test_a_run_with_every_option_trains(tiny_workspace, tmp_path, capsys, monkeypatch):
    """train.py with every option at once: each acts in the real run (the training losses see soft targets
    from mixup/cutmix; the model's linear layers compute in bf16 under autocast), and the metrics add up."""
    from video_classifier.core.task import SingleLabel

    data = tiny_config_dict(tmp_path)
    data["data"]["root"] = str(tiny_workspace / "data")
    data["train"].update(label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0, layer_decay=0.75, epochs=1,
                         max_stride="auto", mixed_precision="bf16")  # bf16: CPU autocast where no GPU
    data["eval"] = {"num_clips": 1, "num_crops": 1}
    targets_seen, linear_dtypes = [], set()
    loss = SingleLabel.loss

    def recording_loss(logits, targets, *args, **kwargs):
        targets_seen.append(targets.detach().clone())
        return loss(logits, targets, *args, **kwargs)

    def record_dtype(module, args, output):
        if module.training and isinstance(module, torch.nn.Linear):
            linear_dtypes.add(output.dtype)

    monkeypatch.setattr(SingleLabel, "loss", staticmethod(recording_loss))
    hook = torch.nn.modules.module.register_module_forward_hook(record_dtype)
    try:
        train_script.main(["--config", str(write_config(tmp_path / "config.yaml", data))])
    finally:
        hook.remove()
    metrics = json.loads((Path(data["train"]["output_dir"]) / "metrics.json").read_text())
    assert_metrics_add_up(metrics["test"])
    training = [t for t in targets_seen if t.is_floating_point()]  # evaluation's targets are class ids
    assert training and all(t.ndim == 2 for t in training)  # every training batch went through a mixer
    assert any(((t > 0) & (t < 1)).any() for t in training)  # and came out with soft targets
    assert torch.bfloat16 in linear_dtypes
    # 30-frame videos, 4 frames per clip: the stock pipeline's frames are 7.5 apart
    assert "training strides drawn from 2-7.5 (train.max_stride: auto)" in capsys.readouterr().out


def records(frames: list[int], fps: float = 25.0) -> list[VideoRecord]:
    return [VideoRecord(f"train/A/v{i}.avi", "A", "train", str(i), n, fps, n / fps) for i, n in enumerate(frames)]


def test_temporal_jitter_draws_clip_lengths_across_the_stride_range():
    rows = records([200] * 4)
    fixed = ClipDataset(rows, ".", {"A": 0}, SPEC, train=True, decoder=None)
    jittered = ClipDataset(rows, ".", {"A": 0}, SPEC, train=True, decoder=None, max_stride=6)
    lengths = {float(end - start) for start, end in (fixed.window(0) for _ in range(50))}
    assert lengths == {4 * 2 / 25}  # 4 frames x stride 2 at 25 fps
    lengths = [float(end - start) for start, end in (jittered.window(0) for _ in range(400))]
    assert 4 * 2 / 25 <= min(lengths) < 4 * 2.5 / 25 and 4 * 5.5 / 25 < max(lengths) <= 4 * 6 / 25
    evaluation = ClipDataset(rows, ".", {"A": 0}, SPEC, train=False, decoder=None, max_stride=6)
    assert {float(evaluation.window(i)[1] - evaluation.window(i)[0]) for i in range(len(evaluation))} == {8 / 25}


def test_whole_video_clips_take_the_pipelines_frames_for_their_share_of_training_clips():
    """train.whole_video_clips 0.5: about half the training clips are the frames transformers' pipeline samples
    over the whole video (k x frames // num_frames), the rest windows of num_frames x sample_rate; evaluation
    keeps windows; at 0, no clip is drawn whole (and no random draw is spent on it)."""
    from dataclasses import replace

    asked = []

    def decoder(path, indices, fps):
        asked.append(list(indices))
        return torch.zeros(len(indices), 3, 8, 8, dtype=torch.uint8)

    rows = records([200] * 4)
    pipeline_frames = [k * 200 // 4 for k in range(4)]  # SPEC: 4 frames
    spec = replace(SPEC, resize_shortest_edge=8, crop_size=(8, 8), min_scale=1.0, max_scale=1.0,
                   whole_video_clips=0.5)
    dataset = ClipDataset(rows, ".", {"A": 0}, spec, train=True, decoder=decoder)
    for i in range(400):
        dataset[i % 4]
    whole = sum(a == pipeline_frames for a in asked)
    assert 150 < whole < 250  # binomial(400, 0.5): 200 +- 50 is beyond 5 sigma
    assert all(a == pipeline_frames or a[-1] - a[0] <= 7 for a in asked)  # else a window of 4 x stride 2
    asked.clear()
    ClipDataset(rows, ".", {"A": 0}, spec, train=False, decoder=decoder)[0]
    assert asked[0] != pipeline_frames and asked[0][-1] - asked[0][0] <= 7
    state = random.getstate()
    assert replace(spec, whole_video_clips=0.0).for_clip(random.random) is not None and random.getstate() == state


def test_auto_stride_is_the_stock_pipelines_spacing_on_the_median_video():
    assert pipeline_stride(records([50, 60, 200]), num_frames=8) == 60 / 8


@pytest.mark.parametrize("value, message", [
    (0.5, "train.max_stride = 0.5: must be >= 1"),
    ("fast", "train.max_stride = 'fast': expected 'auto' or float or null"),
])
def test_bad_max_stride_is_one_line(value, message):
    with pytest.raises(UserError, match=message):
        _build(Config, {"train": {"max_stride": value}}, "")


def test_temporal_jitter_with_the_pytorchvideo_backend_is_one_line():
    with pytest.raises(UserError, match="train.max_stride .* needs data.backend: native"):
        build_datasets(DataConfig(backend="pytorchvideo"), {"train": records([50])}, {"A": 0}, SPEC, max_stride=6)
