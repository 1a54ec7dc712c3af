"""Clips travel as uint8 (DataLoader, collate, host-to-device copy) and become the model's float input
once per batch, on the model's device (ModelSpec.pixels). The model must receive, bit for bit, the
values the per-clip float path gave it: (x / 255 - mean) / std computed in float32 as
x * (1 / (255 std)) + (-mean / std), clip by clip, on the CPU. Checked where the model is called:
training steps and evaluation inside the Trainer, and the scoring evaluation and infer.py share."""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers import TrainingArguments

from video_classifier.core.config import TrainConfig
from video_classifier.data.datasets import ClipDataset, ViewDataset
from video_classifier.data.decoding import decode_pyav
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import PreprocessSpec
from video_classifier.engine.scoring import video_scores
from video_classifier.engine.trainer import VideoTrainer
from video_classifier.model.model_spec import ModelSpec

SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), min_scale=1.0, max_scale=1.25,
                      horizontal_flip=True)


def float_path(clip: torch.Tensor) -> torch.Tensor:
    """One uint8 clip (T, C, H, W) normalised on its own, as the data path did before clips stayed uint8."""
    std, mean = torch.tensor(SPEC.std), torch.tensor(SPEC.mean)
    return clip.float().mul_((1 / (255 * std)).view(3, 1, 1)).add_((-mean / std).view(3, 1, 1))


@pytest.fixture()
def setup(tiny_workspace):
    root = tiny_workspace / "data"
    label2id, records = load_prepared(root)
    torch.manual_seed(0)
    model = transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(
        image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, num_labels=len(label2id)))
    seen: list[torch.Tensor] = []  # what forward() received, in call order
    model.register_forward_pre_hook(lambda _, args, kwargs: seen.append(kwargs["pixel_values"].detach().clone()),
                                    with_kwargs=True)
    spec = ModelSpec("videomae", "pixel_values", SPEC, {i: label for label, i in label2id.items()})
    return root, label2id, records, model, spec, seen


def test_training_and_its_evaluation_receive_the_float_paths_pixels(setup, tmp_path):
    root, label2id, records, model, spec, seen = setup
    batches: list[torch.Tensor] = []  # what the DataLoader handed over

    def collate(items):
        batch = spec.collate(items)
        batches.append(batch["pixel_values"].clone())
        return batch

    train = ClipDataset([r for r in records if r.split == "train"], root, label2id, SPEC, train=True,
                        decoder=decode_pyav)
    val = ClipDataset([r for r in records if r.split == "val"], root, label2id, SPEC, train=False,
                      decoder=decode_pyav)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4,
                             per_device_eval_batch_size=4, learning_rate=1e-3, report_to="none", use_cpu=True,
                             save_strategy="no", dataloader_num_workers=0, remove_unused_columns=False)
    trainer = VideoTrainer(model=model, args=args, train_dataset=train, eval_dataset=val, data_collator=collate,
                           spec=spec, train_options=TrainConfig())
    trainer.train()
    handed = batches[:len(seen)]  # the Trainer's loader may fetch one batch ahead of the last step
    assert len(seen) == 3
    batches.clear()
    trainer.evaluate()
    handed += batches
    assert len(seen) == len(handed) == 3 + -(-len(val) // 4)  # and the val clips in batches of 4
    for batch, received in zip(handed, seen):
        assert batch.dtype == torch.uint8  # a quarter of float32's bytes through the loader and the copy
        assert received.dtype == torch.float32
        assert torch.equal(received, torch.stack([float_path(clip) for clip in batch]))


def test_scoring_receives_the_float_paths_pixels(setup):
    """scoring.video_scores: evaluate_model's and infer.py's scoring, 2 clips x 3 crops per video."""
    root, label2id, records, model, spec, seen = setup
    test = [r for r in records if r.split == "test"]
    views = ViewDataset(test, root, label2id, SPEC, 2, 3, decode_pyav)
    video_scores(model.eval(), spec, views, batch_size=12)
    expected = torch.cat([views[i]["views"] for i in range(len(views))])
    assert expected.dtype == torch.uint8 and expected.shape[0] == 6 * len(test)
    received = torch.cat(seen)
    assert torch.equal(received, torch.stack([float_path(view) for view in expected]))


def test_float_clips_are_refused():
    """A float clip would be normalised twice: said at once."""
    with pytest.raises(TypeError, match="uint8"):
        ModelSpec("videomae", "pixel_values", SPEC).pixels(torch.zeros(1, 4, 3, 32, 32))
