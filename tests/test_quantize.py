"""export.py --quantize int8 (serve/quantize.py): onnxruntime's static (calibrated on val clips) and dynamic
quantization of the fp32 export, checked against torch's fp32 logits computed here, not by the export; the
int8 folder serves through infer.py's onnxruntime backend; a copy that loses the top-1 is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import run_main, torch_test_logits

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.core.task import SingleLabel
from video_classifier.data.manifest import load_prepared
from video_classifier.serve.onnx_export import onnx_session
from video_classifier.serve.quantize import int8_parity

INT8 = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}


@pytest.fixture(scope="module")
def test_clips(trained):
    """Centre clips of the tiny run's test videos, decoded with PyAV, and torch's fp32 logits for them."""
    config_path, out, _ = trained
    key, pixels, logits = torch_test_logits(config_path, out, 1)
    return key, pixels.numpy(), logits


@pytest.mark.parametrize("calibrate, method", [("4", "static, calibrated on 4 val clips"), ("0", "dynamic")])
def test_int8_export_holds_int8_weights_and_its_parity_is_what_it_says(trained, tmp_path, test_clips,
                                                                      calibrate, method):
    config_path, out, _ = trained
    key, pixels, reference = test_clips
    result = run_main("export.py", "--config", str(config_path), "--model", str(out), "--out", str(tmp_path / "onnx"),
                      "--quantize", "int8", "--calibrate", calibrate, "--min-agreement", "0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / "onnx-int8"
    graph = onnx.load(str(folder / "model.onnx")).graph
    quantized = [t.name for t in graph.initializer if t.data_type in INT8 and len(t.dims) == 2]
    assert len(quantized) >= 4, "the int8 model's matrices are not int8"  # q, k, v, output, MLP of one layer
    fp32_size = (tmp_path / "onnx" / "model.onnx").stat().st_size
    assert (folder / "model.onnx").stat().st_size < 0.6 * fp32_size  # int8 weights: about a quarter of the bytes
    if calibrate != "0":  # static QDQ: int8 weights reach a MatMul through DequantizeLinear; the classifier's do not
        made_by = {output: node.op_type for node in graph.node for output in node.output}
        weights = [made_by.get(node.input[1]) for node in graph.node if node.op_type in ("MatMul", "Gemm")]
        assert weights[0] == "DequantizeLinear" and weights[-1] is None, weights  # None: a float initializer

    record = json.loads((folder / "parity.json").read_text())
    got = onnx_session(folder / "model.onnx").run(None, {key: pixels})[0]
    assert record["quantization"] == f"int8 {method}" and record["clips"] == len(pixels)
    assert record["agreement"] == pytest.approx(float((got.argmax(1) == reference.argmax(1)).mean()))
    assert record["max_abs_logit_difference"] == pytest.approx(float(np.abs(got - reference).max()), abs=1e-6)
    # int8 keeps 256 levels per tensor: the logits may move by some percent of their range, not more
    assert record["max_abs_logit_difference"] <= 0.25 * np.abs(reference).max()
    assert f"quantized to int8 ({method})" in result.stdout


def test_int8_serves_through_the_onnxruntime_backend(trained, tmp_path):
    config_path, out, _ = trained
    config = load_config(config_path)
    _, records = load_prepared(config.data.root)
    videos = [str(Path(config.data.root) / r.path) for r in records if r.split == "test"][:3]
    exported = run_main("export.py", "--config", str(config_path), "--model", str(out), "--out", str(tmp_path / "onnx"),
                        "--quantize", "int8", "--calibrate", "4", "--min-agreement", "0.5")
    assert exported.returncode == 0, exported.stderr[-2000:]
    answered = run_main("infer.py", "--config", str(config_path), "--model", str(tmp_path / "onnx-int8"),
                        "--backend", "onnxruntime", "--json", *videos)
    assert answered.returncode == 0, answered.stderr[-2000:]
    predictions = json.loads(answered.stdout)
    assert len(predictions) == len(videos)
    for prediction in predictions:
        assert prediction["labels"] and all(0 <= s <= 1 for s in prediction["scores"])


def test_an_int8_copy_that_loses_the_top1_is_refused_in_one_line(trained, tmp_path, test_clips):
    config_path, out, _ = trained
    key, pixels, reference = test_clips
    exported = run_main("export.py", "--config", str(config_path), "--model", str(out), "--out", str(tmp_path / "onnx"),
                        "--quantize", "int8", "--calibrate", "0", "--min-agreement", "0.5")
    assert exported.returncode == 0, exported.stderr[-2000:]
    wrong = -reference  # a reference whose top-1 is every clip's last class: the copy cannot agree with it
    with pytest.raises(UserError) as err:
        session = onnx_session(tmp_path / "onnx-int8" / "model.onnx")
        int8_parity(tmp_path / "onnx-int8", lambda x: session.run(None, {key: x})[0], torch.from_numpy(pixels), wrong,
                    SingleLabel(), "dynamic", 0.99)
    assert "int8 parity failed" in str(err.value) and "\n" not in str(err.value)
    assert json.loads((tmp_path / "onnx-int8" / "parity.json").read_text())["passed"] is False
