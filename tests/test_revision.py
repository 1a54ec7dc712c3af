"""model.revision: the checkpoint and its processor come from the named revision of a Hub repo (a pull
request's refs/pr/4, as VideoPrism's transformers files live on), served by the local stand-in Hub."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import talk_to_hub
from fake_hub import serve_hub

from video_classifier.core.config import TinyModelConfig
from video_classifier.core.errors import UserError
from video_classifier.model.model_spec import tiny_model
from video_classifier.model.modeling import load_for_training, load_processor

REPO = "someone/videomae-tiny"


def _checkpoint(folder: Path, seed: int, size: int) -> dict[tuple[str, str, str], Path]:
    backbone, processor = tiny_model(TinyModelConfig(image_size=size, patch_size=8, num_frames=4, hidden_size=32,
                                                     num_attention_heads=2, num_hidden_layers=1,
                                                     intermediate_size=64), seed)
    backbone.save_pretrained(folder)
    processor.save_pretrained(folder)
    return {p.name: p for p in folder.iterdir()}


def test_revision_selects_the_weights_and_the_processor(monkeypatch, tmp_path):
    main = _checkpoint(tmp_path / "main", seed=0, size=32)
    pull_request = _checkpoint(tmp_path / "pr", seed=1, size=48)
    files = {("model", REPO, name): path for name, path in main.items()}
    files.update({("model", f"{REPO}@refs/pr/4", name): path for name, path in pull_request.items()})
    labels = {"a": 0, "b": 1}
    with serve_hub(files) as hub:
        talk_to_hub(monkeypatch, hub, tmp_path / "cache")
        assert load_processor(REPO, "refs/pr/4").crop_size.height == 48
        assert load_processor(REPO).crop_size.height == 32
        pr_model, main_model = load_for_training(REPO, labels, revision="refs/pr/4"), load_for_training(REPO, labels)
        from_pr, from_main = pr_model.state_dict(), main_model.state_dict()
        with pytest.raises(UserError, match="the config someone/videomae-tiny has no such revision: check model.revision"):
            load_for_training(REPO, labels, revision="refs/pr/5")
        asked = {path for _, path in hub.requests}
    assert (pr_model.config.image_size, main_model.config.image_size) == (48, 32)
    from safetensors.torch import load_file

    for model_weights, folder in ((from_pr, "pr"), (from_main, "main")):
        saved = load_file(tmp_path / folder / "model.safetensors")
        shared = [key for key in saved if f"videomae.{key}" in model_weights]  # q_bias/v_bias are renamed on load
        assert len(shared) > 10
        for key in shared:
            assert torch.equal(model_weights[f"videomae.{key}"], saved[key]), (folder, key)
    assert any("refs%2Fpr%2F4" in path for path in asked)
