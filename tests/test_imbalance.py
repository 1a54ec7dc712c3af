"""Imbalanced classes: loss weights from the training counts, class-balanced sampling that shards across
processes like the Trainer's own sampler, and a long-tailed synthetic set to measure them on."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from accelerate.data_loader import prepare_data_loader
from conftest import run_main, tiny_config_dict, write_config

from video_classifier.core.config import SyntheticConfig
from video_classifier.core.task import SingleLabel
from video_classifier.data.synthetic import CLASSES, plan
from video_classifier.engine.trainer import BalancedSampler, VideoTrainer, sample_weights


def test_weighted_loss_is_torchs_weighted_cross_entropy():
    logits, targets = torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 0, 0, 0, 1, 2])
    weight = SingleLabel().class_weights(["a", "a", "a", "a", "b", "c"], {"a": 0, "b": 1, "c": 2})
    assert weight.tolist() == pytest.approx([0.5, 2.0, 2.0])
    expected = torch.nn.functional.cross_entropy(logits, targets, weight=weight)
    assert SingleLabel.loss(logits, targets, weight=weight).item() == pytest.approx(expected.item(), abs=1e-7)
    assert SingleLabel.loss(logits, targets, weight=weight).item() != pytest.approx(
        SingleLabel.loss(logits, targets).item(), abs=1e-3)


def test_balanced_sampling_draws_every_class_alike():
    """90 videos of one class, 10 of another: 50 epochs of 100 draws give each class half (binomial sd
    0.007; the bound is 7 sd), where uniform sampling gives 90% / 10%."""
    labels = ["big"] * 90 + ["small"] * 10
    weights = sample_weights(SingleLabel(), labels, {"big": 0, "small": 1})
    sampler = BalancedSampler(weights, seed=1)
    drawn = Counter(labels[i] for _ in range(50) for i in sampler)
    assert abs(drawn["small"] / sum(drawn.values()) - 0.5) < 0.05
    first, second = list(BalancedSampler(weights, seed=1)), list(BalancedSampler(weights, seed=1))
    assert first == second  # seeded by (seed, epoch): every process draws the same epoch
    sampler.set_epoch(0)
    assert list(sampler) == first and list(sampler) != first  # the next epoch draws anew


def test_balanced_sampling_shards_across_processes_as_the_trainer_does():
    """accelerate (the Trainer's data parallelism) hands process r every other batch of the one sequence
    all processes draw: the two shards interleave back into it, with no draw given to both."""
    weights = torch.tensor([1.0] * 90 + [9.0] * 10)
    full = list(BalancedSampler(weights, seed=3))
    shards = []
    for rank in (0, 1):
        loader = torch.utils.data.DataLoader(list(range(100)), batch_size=4, sampler=BalancedSampler(weights, seed=3))
        shards.append([b.tolist() for b in prepare_data_loader(loader, num_processes=2, process_index=rank,
                                                               put_on_device=False)])
    interleaved = [i for pair in zip(*shards) for batch in pair for i in batch]
    assert interleaved[:len(full)] == full


def test_the_trainer_takes_the_balanced_sampler(tiny_workspace, tmp_path):
    """A run with both options trains and says so; its Trainer draws from the balanced sampler."""
    data = tiny_config_dict(tmp_path)
    data["data"]["root"] = str(tiny_workspace / "data")
    data["train"].update(epochs=1, class_weights="balanced", sampler="balanced")
    result = run_main("train.py", "--config", str(write_config(tmp_path / "config.yaml", data)))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loss weights (balanced)" in result.stdout and "class-balanced sampling" in result.stdout
    # the Trainer's get_train_dataloader asks _get_train_sampler: with weights, ours; without, its own
    weights = torch.ones(4)
    ours = VideoTrainer._get_train_sampler(SimpleNamespace(sample_weights=weights, args=SimpleNamespace(seed=5)))
    assert isinstance(ours, BalancedSampler) and ours.seed == 5 and len(ours) == 4


def test_the_long_tailed_set_has_the_ratio_it_is_asked_for():
    config = SyntheticConfig(train_groups=50, clips_per_group=2, imbalance=50, val_groups=2, test_groups=3)
    counts = Counter((s.split, s.label) for s in plan(config))
    train = [counts["train", c] for c in CLASSES]
    assert max(train) == 100 and min(train) == 2 and train == sorted(train, reverse=True)
    assert {counts["test", c] for c in CLASSES} == {6}  # the test split stays balanced
