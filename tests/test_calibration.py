"""engine/calibration.py and the temperature folded into the classifier: ECE on a worked example, the
fitted temperature recovering a known one, and the folded model giving logits / T in torch and in the stock
pipeline; training records the temperature and ECE before and after it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForVideoClassification, pipeline

from video_classifier.core.config import load_config
from video_classifier.data.decoding import decode_pyav
from video_classifier.data.manifest import load_prepared
from video_classifier.engine.calibration import expected_calibration_error, fit_temperature, rescaled
from video_classifier.model.folding import TEMPERATURE, fold_temperature


def test_ece_of_a_worked_example():
    # confidences 0.95, 0.9 (bin 14: (14/15, 1]: 0.95 only; 0.9 is in bin 13), 0.5 and 0.45 (bin 7: (7/15, 8/15])
    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.5, 0.5], [0.45, 0.55]])
    labels = [0, 1, 0, 1]  # right, wrong, right (ties pick class 0), right
    # bin 14: 1 video, accuracy 1, confidence 0.95 -> 0.05; bin 13: accuracy 0, confidence 0.9 -> 0.9;
    # bin 7: accuracy 1, confidence (0.5 + 0.55) / 2 = 0.525 -> 0.475 for 2 videos
    assert expected_calibration_error(probs, labels) == pytest.approx(0.25 * 0.05 + 0.25 * 0.9 + 0.5 * 0.475)


def test_the_fitted_temperature_recovers_the_one_the_labels_were_drawn_at():
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(4000, 5, generator=generator)
    labels = torch.multinomial(torch.softmax(logits / 2.0, -1), 1, generator=generator).squeeze(1).tolist()
    views = torch.softmax(logits, -1).unsqueeze(1)  # one view a video, twice too confident
    fitted = fit_temperature(views, labels)
    assert fitted == pytest.approx(2.0, rel=0.1)
    before = expected_calibration_error(views[:, 0], labels)
    after = expected_calibration_error(rescaled(views[:, 0], fitted), labels)
    assert after < before / 2 and after < 0.05
    assert torch.allclose(rescaled(torch.softmax(logits, -1), 2.0), torch.softmax(logits / 2.0, -1), atol=1e-5)


def test_the_folded_temperature_divides_the_logits_in_torch_and_in_the_stock_pipeline(trained, tmp_path):
    config_path, out, _ = trained
    folded_dir = tmp_path / "folded"
    shutil.copytree(out, folded_dir, ignore=shutil.ignore_patterns("checkpoint-*"))
    model = AutoModelForVideoClassification.from_pretrained(folded_dir)
    original = AutoModelForVideoClassification.from_pretrained(out).eval()
    assert fold_temperature(model, 2.5)
    model.save_pretrained(folded_dir)
    folded = AutoModelForVideoClassification.from_pretrained(folded_dir).eval()
    assert getattr(folded.config, TEMPERATURE) == 2.5
    clip = torch.randn(2, original.config.num_frames, 3, original.config.image_size, original.config.image_size)
    with torch.inference_mode():
        assert torch.allclose(folded(pixel_values=clip).logits, original(pixel_values=clip).logits / 2.5, atol=1e-5)
    root = load_config(config_path).data.root
    record = next(r for r in load_prepared(root)[1] if r.split == "test")
    frames = decode_pyav(Path(root) / record.path, list(range(record.frames)), record.fps).permute(0, 2, 3, 1).numpy()
    scores = {}
    for name, folder in (("original", out), ("folded", folded_dir)):
        classify = pipeline("video-classification", model=str(folder))
        result = classify(frames, top_k=original.config.num_labels)
        scores[name] = torch.tensor([next(r["score"] for r in result if r["label"] == original.config.id2label[i])
                                     for i in range(original.config.num_labels)])
    assert torch.allclose(scores["folded"], rescaled(scores["original"], 2.5), atol=1e-4)


def test_training_records_the_temperature_and_ece_before_and_after(trained):
    _, out, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    val, test = metrics["val"], metrics["test"]
    assert val["temperature"] == test["temperature"] > 0
    assert {"ece_before", "ece_after", "ece"} <= set(val) and test["ece"] == test["ece_after"]
    config = json.loads((out / "config.json").read_text())
    assert config[TEMPERATURE] == pytest.approx(val["temperature"])
    assert (out / "reliability_val.png").is_file() and (out / "reliability_test.png").is_file()
