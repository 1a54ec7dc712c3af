"""train.push_to_hub, for real: train.py pushes to a local stand-in for the Hub (`fake_hub`), and the pushed
repo is read back through it with huggingface_hub and transformers, as a user of the model would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import talk_to_hub, tiny_config_dict, write_config
from fake_hub import FakeHub, serve_hub
from huggingface_hub import HfApi, ModelCard, hf_hub_download

import train as train_script

REPO_ID = "someone/videomae-tiny-finetuned"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """A fake Hub that this process talks to, as if started with HF_ENDPOINT pointing at it."""
    with serve_hub({}) as server:
        talk_to_hub(monkeypatch, server, tmp_path / "hf_cache")
        yield server


def test_training_pushes_model_processor_and_card(hub: FakeHub, tiny_workspace: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForVideoClassification, AutoVideoProcessor

    data = tiny_config_dict(tmp_path)
    data["data"]["root"] = str(tiny_workspace / "data")
    data["train"]["epochs"] = 1
    config = write_config(tmp_path / "config.yaml", data)
    out = Path(data["train"]["output_dir"])

    train_script.main(["--config", str(config), "--set", "train.push_to_hub=true",
                       "--set", f"train.hub_model_id={REPO_ID}"])

    api = HfApi(endpoint=hub.url)
    info = api.model_info(REPO_ID)
    assert info.sha == hub.commits[REPO_ID]
    pushed = {s.rfilename for s in info.siblings}
    needed = {"model.safetensors", "config.json", "preprocessor_config.json", "video_preprocessor_config.json",
              "README.md", "labels.json", "metrics.json", "config.yaml", "confusion_test.png"}
    assert needed <= pushed, needed - pushed
    assert not any(name.startswith("checkpoint-") for name in pushed)
    for name in sorted(pushed):  # the repo holds the output folder as the run left it
        assert Path(hf_hub_download(REPO_ID, name)).read_bytes() == (out / name).read_bytes(), name

    # the card is model_card.py's (not the Trainer's), and the Hub's parser reads its metrics
    card = ModelCard.load(REPO_ID)
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert card.data.pipeline_tag == "video-classification" and card.data.model_name == REPO_ID.split("/")[1]
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert values == {"top-1, 5 clips x 3 crops": round(test["top1"], 4),
                      "top-1, 1 clip x 1 crop": round(test["centre_view_top1"], 4),
                      "top-1, clip level": round(test["clip_top1"], 4),
                      "top-1, transformers pipeline": round(test["pipeline_top1"], 4)}
    assert all(r.dataset_split == "test" for r in card.data.eval_results)
    assert f'pipeline("video-classification", model="{REPO_ID}")' in card.text

    # the pushed model is the trained one
    remote = AutoModelForVideoClassification.from_pretrained(REPO_ID).eval()
    local = AutoModelForVideoClassification.from_pretrained(out).eval()
    assert AutoVideoProcessor.from_pretrained(REPO_ID).to_dict() == AutoVideoProcessor.from_pretrained(out).to_dict()
    size = remote.config.image_size
    clip = torch.randn(1, remote.config.num_frames, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(remote(pixel_values=clip).logits, local(pixel_values=clip).logits)
    # every file went inline in the Trainer's commits: nothing asked for a Xet token or an LFS upload
    repo_api = re.escape(f"/api/models/{REPO_ID}")
    served = rf"/api/(repos/create|validate-yaml)|{repo_api}(/(preupload|commit)/main)?|/.+/resolve/.+"
    assert all(re.fullmatch(served, path) for _, path in hub.requests)
