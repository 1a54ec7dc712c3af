"""Memory savers through the Trainer's own options: gradient checkpointing changes no number, and k
accumulated batches of b take the step one batch of k x b takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_main, tiny_config_dict, write_config
from safetensors.torch import load_file

from video_classifier.core.config import TinyModelConfig
from video_classifier.model.model_spec import ARCHITECTURES, tiny_model
from video_classifier.model.modeling import load_for_training


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(architecture, tmp_path):
    backbone, processor = tiny_model(TinyModelConfig(architecture=architecture, image_size=32, patch_size=8,
                                                     num_frames=4, hidden_size=32, num_attention_heads=2,
                                                     num_hidden_layers=2, intermediate_size=64), seed=0)
    backbone.save_pretrained(tmp_path)
    model = load_for_training(str(tmp_path), {"a": 0, "b": 1, "c": 2}).train()
    clips = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 2])

    def loss_and_gradients() -> tuple[float, dict[str, torch.Tensor]]:
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(**{model.main_input_name: clips}).logits.reshape(2, -1), labels)
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain_loss, plain = loss_and_gradients()
    # the newer 5.x releases call it activation checkpointing and warn on the old names
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()
    assert getattr(model, "is_activation_checkpointing", None) or model.is_gradient_checkpointing
    checkpointed_loss, checkpointed = loss_and_gradients()
    assert checkpointed_loss == pytest.approx(plain_loss, abs=1e-5)
    assert plain.keys() == checkpointed.keys() and len(plain) > 10
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-5), (architecture, name)


def test_accumulated_batches_take_the_step_of_one_batch_of_their_size(tiny_workspace, tmp_path):
    """One optimizer step of train.py: batch 2 x 2 accumulation steps against batch 4 (no dropout in the tiny
    model, the same shuffled order and random clips): the same loss, gradient norm and weights, 1e-5. The
    run says the effective batch; with checkpointing on too, the same again."""
    weights, logs = {}, {}
    for name, batch, steps, checkpointing in (("one", 4, 1, False), ("accumulated", 2, 2, False),
                                              ("checkpointed", 2, 2, True)):
        data = tiny_config_dict(tmp_path / name)
        data["data"]["root"] = str(tiny_workspace / "data")
        data["train"].update(batch_size=batch, gradient_accumulation_steps=steps, max_steps=1, warmup=0,
                             gradient_checkpointing=checkpointing)
        data["eval"] = {"num_clips": 1, "num_crops": 1}
        result = run_main("train.py", "--config", str(write_config(tmp_path / f"{name}.yaml", data)))
        assert result.returncode == 0, result.stderr[-2000:]
        if steps > 1:
            assert "batch 2 x 2 accumulation steps = effective batch 4" in result.stdout
        out = Path(data["train"]["output_dir"])
        weights[name] = load_file(out / "model.safetensors")
        (logged,) = [h for h in json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())["log_history"]
                     if "loss" in h]
        logs[name] = (logged["loss"], logged["grad_norm"])  # Adam's first step hides a gradient's scale: these do not
    start = load_file(Path(tmp_path / "one" / "checkpoint" / "model.safetensors"))  # the backbone, unprefixed
    trained = {k.split(".", 1)[1]: v for k, v in weights["one"].items() if "." in k}
    moved = [k for k in start if k in trained and not torch.equal(start[k], trained[k])]
    assert len(moved) > 10  # the step changed the weights, so the comparison below compares something
    for name in ("accumulated", "checkpointed"):
        assert logs[name] == pytest.approx(logs["one"], abs=1e-5), name
        for key, value in weights["one"].items():
            assert torch.allclose(value, weights[name][key], atol=1e-5), (name, key)
