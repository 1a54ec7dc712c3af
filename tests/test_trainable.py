"""What trains: a frozen backbone keeps every weight (a probe trains the head only), LoRA adapters train a
small share of the parameters and merge into a plain transformers model that gives the adapter model's
logits, and an attentive head loads back through transformers' Auto classes and its pipeline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from conftest import run_main, tiny_config_dict, write_config
from safetensors.torch import load_file

from video_classifier.core.config import LoraOptions, TinyModelConfig, TrainConfig
from video_classifier.core.run_folder import ADAPTER
from video_classifier.data.decoding import torchcodec_problem
from video_classifier.model.model_spec import ARCHITECTURES, LORA_TARGETS, head_modules, tiny_model
from video_classifier.model.modeling import load_for_training
from video_classifier.model.trainable import add_lora, parameter_counts

TINY = dict(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_attention_heads=2, num_hidden_layers=2,
            intermediate_size=64)


def _train(tiny_workspace: Path, tmp_path: Path, name: str, model: dict | None = None, **train: object):
    data = tiny_config_dict(tmp_path / name)
    data["data"]["root"] = str(tiny_workspace / "data")
    data["model"]["checkpoint"] = str(tmp_path / "checkpoint")  # one backbone for every run here
    data["model"].update(model or {})
    data["train"].update(train)
    data["eval"] = {"num_clips": 1, "num_crops": 1}
    result = run_main("train.py", "--config", str(write_config(tmp_path / f"{name}.yaml", data)))
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(data["train"]["output_dir"]), result.stdout


def _backbone_and_head(weights: dict[str, torch.Tensor], prefix: str) -> tuple[dict, dict]:
    inside = {k[len(prefix) + 1:]: v for k, v in weights.items() if k.startswith(prefix + ".")}
    return inside, {k: v for k, v in weights.items() if not k.startswith(prefix + ".")}


@pytest.fixture(scope="module")
def runs(tiny_workspace, tmp_path_factory):
    """Runs of train.py made once for this module, by name, over one tiny backbone: (output folder, stdout)."""
    root, made = tmp_path_factory.mktemp("trainable"), {}

    def run(name: str, model: dict | None = None, **train: object) -> tuple[Path, str, Path]:
        if name not in made:
            made[name] = _train(tiny_workspace, root, name, model=model, **train)
        return (*made[name], root / "checkpoint")

    return run


def _frozen(runs, head: str):
    return runs(f"frozen-{head}", model={"head": head}, freeze="backbone")


def _lora(runs):
    return runs("lora", lora={"r": 4, "alpha": 8, "dropout": 0.0}, learning_rate=1e-2)


@pytest.mark.parametrize("head", ["auto", "attentive"])
def test_frozen_backbone_changes_only_the_head(runs, head):
    """train.freeze: backbone, with VideoMAE's own linear head and with the attentive head: every backbone
    weight saved equals the checkpoint's bit for bit, the head's weights moved between the two epochs'
    checkpoints, and the attentive model loads back through AutoModelForVideoClassification."""
    out, stdout, checkpoint = _frozen(runs, head)
    assert "trains the head only (train.freeze: backbone)" in stdout
    start = load_file(checkpoint / "model.safetensors")  # the backbone as saved, unprefixed
    prefix = "videomae" if head == "auto" else "backbone"
    saved_backbone, saved_head = _backbone_and_head(load_file(out / "model.safetensors"), prefix)
    assert saved_backbone.keys() == start.keys() and len(start) > 10
    for key, value in start.items():
        assert torch.equal(saved_backbone[key], value), key
    epochs = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(epochs) == 2
    first, last = (_backbone_and_head(load_file(p / "model.safetensors"), prefix)[1] for p in epochs)
    assert saved_head.keys() == first.keys() and all(not torch.equal(first[k], last[k]) for k in first)
    trainable = int(re.search(r"trains the head only \(train.freeze: backbone\): ([\d,]+) of", stdout)[1].replace(",", ""))
    assert trainable == sum(v.numel() for v in saved_head.values())
    if head == "attentive":
        config = json.loads((out / "config.json").read_text())
        assert config["model_type"] == "video_attentive_probe" and config["num_frames"] == 4
        model = transformers.AutoModelForVideoClassification.from_pretrained(out)
        assert type(model).__name__ == "AttentiveProbeForVideoClassification"


@pytest.mark.torchcodec
@pytest.mark.skipif(torchcodec_problem() is not None, reason="transformers' pipeline decodes with torchcodec")
def test_the_attentive_model_loads_in_the_pipeline_with_and_without_this_package(runs, tiny_workspace, tmp_path):
    """pipeline() loads the attentive probe (registered when this package is imported), and so does plain
    transformers in a process without it, from the folder's own code (trust_remote_code)."""
    out, _, _ = _frozen(runs, "attentive")
    video = next((tiny_workspace / "data" / "test").glob("*/*.avi"))
    classes = json.loads((out / "config.json").read_text())["id2label"]
    scores = transformers.pipeline("video-classification", model=str(out))(str(video), top_k=len(classes))
    assert {s["label"] for s in scores} == set(classes.values())
    assert sum(s["score"] for s in scores) == pytest.approx(1, abs=1e-5)
    code = ("import sys, transformers; p = transformers.pipeline('video-classification', model=sys.argv[1], "
            "trust_remote_code=True); print(p(sys.argv[2], top_k=99))")
    plain = subprocess.run([sys.executable, "-c", code, str(out), str(video)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""})
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "video_classifier" not in plain.stderr
    assert str(scores[0]["label"]) in plain.stdout.split("}")[0]


def test_lora_trains_a_small_share_and_its_merged_model_gives_the_adapter_logits(runs):
    """A LoRA run: the output folder's merged model (plain transformers) gives the logits of the base
    checkpoint with the saved adapter over it (peft), 1e-5; the backbone's own weights other than the
    adapted projections are the checkpoint's."""
    out, stdout, checkpoint = _lora(runs)
    assert "trains LoRA adapters (r 4) and the head" in stdout
    assert (out / ADAPTER / "adapter_config.json").is_file() and (out / "model.safetensors").is_file()
    merged = transformers.AutoModelForVideoClassification.from_pretrained(out).eval()
    assert "peft" not in type(merged).__module__
    from peft import PeftModel

    base = load_for_training(str(checkpoint), merged.config.label2id)
    adapted = PeftModel.from_pretrained(base, str(out / ADAPTER)).eval()
    clips = torch.randn(3, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = adapted(pixel_values=clips).logits, merged(pixel_values=clips).logits
    assert (expected - got).abs().max() < 1e-5
    # the adapters moved the attention: the merged query weights differ from the checkpoint's
    start = load_file(checkpoint / "model.safetensors")
    merged_weights = {k.split(".", 1)[1]: v for k, v in load_file(out / "model.safetensors").items()
                      if k.startswith("videomae.")}
    changed = {k for k in start if not torch.equal(start[k], merged_weights[k])}
    assert changed and all(re.search(r"attention\.attention\.(query|value)\.weight$", k) for k in changed)


@pytest.mark.torchcodec
@pytest.mark.skipif(torchcodec_problem() is not None, reason="transformers' pipeline decodes with torchcodec")
def test_the_merged_lora_model_loads_in_the_pipeline(runs, tiny_workspace):
    out, _, _ = _lora(runs)
    labels = json.loads((out / "config.json").read_text())["id2label"]
    video = next((tiny_workspace / "data" / "test").glob("*/*.avi"))
    scores = transformers.pipeline("video-classification", model=str(out))(str(video), top_k=len(labels))
    assert {s["label"] for s in scores} == set(labels.values())


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_default_lora_targets_adapt_only_the_backbone_attention(architecture, tmp_path):
    """Each architecture's default targets (model_spec.LORA_TARGETS) find the encoder's attention
    projections and nothing in the head; with non-zero adapters, merging keeps the logits (1e-5)."""
    backbone, _ = tiny_model(TinyModelConfig(architecture=architecture, **TINY), seed=0)
    backbone.save_pretrained(tmp_path)
    model = load_for_training(str(tmp_path), {"a": 0, "b": 1, "c": 2}).eval()
    heads = head_modules(model)
    peft_model = add_lora(model, LoraOptions(r=2, dropout=0.0))
    adapted = [n for n, m in peft_model.named_modules() if n.endswith(".lora_A")]
    assert len(adapted) >= 2 * TINY["num_hidden_layers"]
    for name in adapted:
        inner = name.split("base_model.model.", 1)[1].removesuffix(".lora_A")
        assert re.fullmatch(LORA_TARGETS[model.config.model_type], inner), name
        assert inner.split(".")[0] not in heads and "predictor" not in inner
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)
    assert {h for h in heads if any(f".{h}.modules_to_save." in f".{n}" for n in trainable)} == set(heads)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    clips = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    key = model.main_input_name
    with torch.no_grad():
        expected = peft_model(**{key: clips}).logits
        merged = peft_model.merge_and_unload()
        assert (merged(**{key: clips}).logits - expected).abs().max() < 1e-5


def test_lora_on_videomae_base_trains_under_two_percent():
    """The default LoRA (r 16 on the query and value projections) of VideoMAE-B (86 M parameters, 10
    classes), built from its config: under 2% of the parameters train."""
    config = transformers.VideoMAEConfig(num_labels=10)
    model = transformers.VideoMAEForVideoClassification(config)
    trainable, total = parameter_counts(add_lora(model, TrainConfig(lora=LoraOptions()).lora))
    assert total > 80e6 and 0 < trainable / total < 0.02


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_a_head_on_cached_features_gives_the_whole_models_logits(architecture, tmp_path):
    """train.cache_features: the backbone's tokens, grabbed by compute_features, fed to the head through
    the stand-in backbone, give the logits of the whole model on the clips (1e-5), on each architecture."""
    from video_classifier.engine.features import cached_backbone, compute_features
    from video_classifier.model.model_spec import describe

    backbone, processor = tiny_model(TinyModelConfig(architecture=architecture, **TINY), seed=0)
    backbone.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    model = load_for_training(str(tmp_path), {"a": 0, "b": 1, "c": 2}).eval()
    spec = describe(model, processor, sample_rate=2)
    clips = torch.randint(0, 256, (3, 4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = spec.logits(model, clips)
        (features,) = compute_features(model, spec, [{"views": clips}], batch_size=2, desc="test")
        with cached_backbone(model, spec):
            got = spec.class_scores(model(**spec.inputs(features)).logits)
        again = spec.logits(model, clips)  # the backbone's own forward is back
    assert features.shape[0] == 3 and features.ndim == 3
    assert (got - expected).abs().max() < 1e-5
    assert torch.equal(again, expected)


def test_a_probe_on_cached_features_trains_and_keeps_the_backbone(tiny_workspace, tmp_path):
    """A train.py run with cached features: the cache is made and said, the saved backbone is the
    checkpoint's bit for bit, and the final evaluation runs on the videos; with augmentation on, one line."""
    out, stdout = _train(tiny_workspace, tmp_path, "cached", freeze="backbone", cache_features=True,
                         min_scale=1.0, max_scale=1.0, horizontal_flip=False)
    assert re.search(r"train.cache_features: train: [\d,]+ views", stdout)
    start = load_file(tmp_path / "checkpoint" / "model.safetensors")
    saved, _ = _backbone_and_head(load_file(out / "model.safetensors"), "videomae")
    assert saved.keys() == start.keys() and all(torch.equal(saved[k], v) for k, v in start.items())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["videos"] > 0 and 0 <= metrics["test"]["top1"] <= 1
    data = tiny_config_dict(tmp_path / "refused")
    data["train"].update(freeze="backbone", cache_features=True)  # the tiny config's max_scale is 1.25
    result = run_main("train.py", "--config", str(write_config(tmp_path / "refused.yaml", data)))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: train.cache_features needs train.min_scale")


def test_an_interrupted_lora_run_resumes_from_its_adapter(runs, tiny_workspace, tmp_path):
    """A LoRA run that stopped after its first epoch (its checkpoint holds the adapter only) resumes there
    when the same command runs again: the base checkpoint, then the Trainer loads the adapter; it ends
    with the merged model of the run that was never interrupted (1e-5)."""
    import shutil

    import yaml

    out, _, _ = _lora(runs)
    first = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[0]
    assert not (first / "model.safetensors").exists() and (first / "adapter_model.safetensors").is_file()
    config_path = out.parent.parent / "lora.yaml"
    data = yaml.safe_load(config_path.read_text())
    data["train"]["output_dir"] = str(tmp_path / "run")
    shutil.copytree(first, tmp_path / "run" / first.name)  # what a crash after epoch 1 leaves
    result = run_main("train.py", "--config", str(write_config(tmp_path / "resumed.yaml", data)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming from {tmp_path / 'run' / first.name}" in result.stdout
    resumed, whole = load_file(tmp_path / "run" / "model.safetensors"), load_file(out / "model.safetensors")
    assert resumed.keys() == whole.keys()
    for key in whole:
        assert torch.allclose(resumed[key], whole[key], atol=1e-5), key
