"""--backend openvino (serve/openvino_backend.py): the export folder compiled by OpenVINO, in fp32 equal to
torch's logits (computed here), in the precision infer.precision picks, serving through infer.py; a static
int8 export of onnxruntime's refused in one line; OpenVINO's own int8 (NNCF) exported, checked and served."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main, torch_test_logits

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.data.manifest import load_prepared
from video_classifier.model.precision import choose_precision, cpu_flags, measured_agreement
from video_classifier.serve.openvino_backend import OpenVinoModel, load_openvino


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The tiny run exported (fp32, and a static int8 copy), its test clips and torch's fp32 logits."""
    config_path, out, _ = trained
    folder = tmp_path_factory.mktemp("export") / "onnx"
    result = run_main("export.py", "--config", str(config_path), "--model", str(out), "--out", str(folder),
                      "--quantize", "int8", "--calibrate", "4", "--min-agreement", "0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    return config_path, folder, *torch_test_logits(config_path, out, 3)


def test_openvino_fp32_gives_torchs_logits(exported):
    _, folder, key, pixels, reference = exported
    model = OpenVinoModel(folder, "fp32")
    got = model(**{key: pixels}).logits.numpy()
    assert got.shape == reference.shape
    assert np.abs(got - reference).max() <= 1e-4


def test_openvino_answers_in_the_precision_auto_picks(exported, capsys):
    config_path, folder, key, pixels, reference = exported
    model, spec = load_openvino(folder, None, "auto")
    # as the torch backend would choose for this model: its export keeps the bf16 agreement train.py measured
    # (None where the training machine had no native bf16: train.py measures it only there)
    agreement = measured_agreement(json.loads((folder / "config.json").read_text()))
    chosen = choose_precision("auto", "cpu", cpu_flags(), agreement=agreement)
    assert f"precision: {chosen.name} ({chosen.why}; OpenVINO)" in capsys.readouterr().err
    got = model(**{key: pixels}).logits.numpy()
    # bf16 keeps 8 significant bits: as tests/test_precision.py bounds it, 4% of the largest logit; fp32 exact
    bound = 0.04 * np.abs(reference).max() if chosen.name == "bf16" else 1e-4
    assert np.abs(got - reference).max() <= bound
    assert spec.id2label and len(spec.id2label) == reference.shape[1]


def test_a_static_int8_export_is_refused_in_one_line(exported):
    _, folder, _, _, _ = exported
    int8 = folder.with_name(folder.name + "-int8")
    assert json.loads((int8 / "parity.json").read_text())["quantization"].startswith("int8 static")
    with pytest.raises(UserError) as err:
        OpenVinoModel(int8, "fp32")
    assert "--backend onnxruntime" in str(err.value) and "\n" not in str(err.value)


def test_infer_py_serves_through_openvino(exported, trained):
    config_path, folder, _, _, _ = exported
    config = load_config(config_path)
    _, records = load_prepared(config.data.root)
    videos = [str(Path(config.data.root) / r.path) for r in records if r.split == "test"][:3]
    answered = run_main("infer.py", "--config", str(config_path), "--model", str(folder), "--backend", "openvino",
                        "--json", *videos)
    assert answered.returncode == 0, answered.stderr[-2000:]
    torch_answer = run_main("infer.py", "--config", str(config_path), "--model", str(trained[1]), "--json", *videos)
    ours, theirs = json.loads(answered.stdout), json.loads(torch_answer.stdout)
    assert len(ours) == len(theirs) == len(videos)
    for a, b in zip(ours, theirs):
        assert a["video"] == b["video"]
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)  # the tests' config: fp32 on both


def int8_input(op, hops: int = 4) -> bool:
    """Whether an OpenVINO op reads a quantized input: a FakeQuantize or an 8-bit constant within `hops` ops
    upstream (NNCF's int8 weights are Constant(i8) -> Convert -> Multiply, its activations FakeQuantize)."""
    import openvino

    frontier = [op]
    for _ in range(hops):
        frontier = [i.get_source_output().get_node() for node in frontier for i in node.inputs()]
        if any(n.get_type_name() == "FakeQuantize" or (n.get_type_name() == "Constant" and n.get_element_type()
               in (openvino.Type.i8, openvino.Type.u8)) for n in frontier):
            return True
    return False


def test_openvinos_own_int8_keeps_the_predictions_and_serves(exported, trained, tmp_path):
    """export.py --quantize openvino-int8: NNCF's int8 model (8-bit weights in the IR) calibrated on val clips,
    its parity record, infer.py --backend openvino serving it, onnxruntime refusing it in one line; with no
    calibration, int8 weights only."""
    import openvino

    from video_classifier.serve.openvino_backend import quantize_openvino_int8

    config_path, fp32, key, pixels, reference = exported
    result = run_main("export.py", "--config", str(config_path), "--model", str(trained[1]), "--out",
                      str(tmp_path / "onnx"), "--quantize", "openvino-int8", "--calibrate", "4", "--min-agreement", "0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    int8 = tmp_path / "onnx-openvino-int8"
    record = json.loads((int8 / "parity.json").read_text())
    assert record["quantization"] == "int8 OpenVINO (NNCF), calibrated on 4 val clips" and record["passed"]
    assert (int8 / "model.xml").is_file() and not (int8 / "model.onnx").exists()

    def int8_constants(folder: Path) -> int:
        graph = openvino.Core().read_model(str(folder / "model.xml"))
        return sum(op.get_type_name() == "Constant" and op.get_element_type() in (openvino.Type.i8, openvino.Type.u8)
                   for op in graph.get_ops())  # calibrated: int8 weights; weights only: uint8 with a zero point

    assert int8_constants(int8) > 0
    graph = openvino.Core().read_model(str(int8 / "model.xml"))
    matmuls = [op for op in graph.get_ordered_ops() if op.get_type_name() == "MatMul"]
    assert [int8_input(op) for op in matmuls[:2]] == [True, True]  # the encoder's layers run in int8
    assert not int8_input(matmuls[-1])  # the classifier (classifier_layer) stays in float
    got = OpenVinoModel(int8, "fp32")(**{key: pixels}).logits.numpy()
    assert got.shape == reference.shape and np.isfinite(got).all() and not np.array_equal(got, reference)
    config = load_config(config_path)
    video = str(Path(config.data.root) / next(r.path for r in load_prepared(config.data.root)[1] if r.split == "test"))
    served = run_main("infer.py", "--config", str(config_path), "--model", str(int8), "--backend", "openvino", video)
    assert served.returncode == 0 and video in served.stdout, served.stderr[-2000:]
    refused = run_main("infer.py", "--config", str(config_path), "--model", str(int8), "--backend", "onnxruntime", video)
    assert refused.returncode == 2 and "--backend openvino" in refused.stderr.strip().splitlines()[-1]

    weights = tmp_path / "weights-only"
    quantize_openvino_int8(fp32, weights, None)
    assert int8_constants(weights) > 0
    assert OpenVinoModel(weights, "fp32")(**{key: pixels}).logits.shape == reference.shape


def test_accuracy_control_keeps_the_val_views_predictions(trained, tmp_path):
    """export.py --accuracy-control: NNCF returns layers to float until the calibration videos' eval views (the
    tests' config: 1 x 1, so the 4 val videos' centre clips) keep --min-agreement of torch's top-1, checked
    here against torch's logits; without openvino-int8 and calibration it is refused in one line."""
    config_path, out, _ = trained
    result = run_main("export.py", "--config", str(config_path), "--model", str(out), "--out", str(tmp_path / "onnx"),
                      "--quantize", "openvino-int8", "--calibrate", "4", "--accuracy-control", "--min-agreement", "0.99")
    assert result.returncode == 0, result.stderr[-2000:]
    int8 = tmp_path / "onnx-openvino-int8"
    record = json.loads((int8 / "parity.json").read_text())
    assert record["quantization"] == "int8 OpenVINO (NNCF), calibrated on 4 val clips, accuracy control"
    key, pixels, reference = torch_test_logits(config_path, out, 1, split="val")
    pixels, reference = pixels[:4], reference[:4]  # the first 4 val videos, as --calibrate 4 takes them
    got = OpenVinoModel(int8, "fp32")(**{key: pixels}).logits.numpy()
    assert (got.argmax(1) == reference.argmax(1)).all() and np.isfinite(got).all()

    refused = run_main("export.py", "--config", str(config_path), "--model", str(out), "--out", str(tmp_path / "x"),
                       "--quantize", "int8", "--accuracy-control")
    assert refused.returncode == 2
    assert "--accuracy-control needs --quantize openvino-int8" in refused.stderr.strip().splitlines()[-1]
