"""The OpenVINO backend of inference (`--backend openvino`): an export folder's model.onnx compiled by
OpenVINO for the CPU, in the precision infer.precision chooses (model/precision.py: bf16 where the CPU has
native bf16, else fp32), behind the interface ModelSpec scores through (`model(**inputs).logits`); or an
OpenVINO int8 export (model.xml), which NNCF, OpenVINO's own quantizer, made from the fp32 export
(`quantize_openvino_int8`: export.py --quantize openvino-int8)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.errors import UserError, first_line
from ..core.run_folder import ONNX_FILE, OPENVINO_FILE, PARITY_FILE
from ..model.model_spec import ModelSpec, describe, trained_stride
from ..model.modeling import load_processor
from ..model.precision import announce, choose_precision, cpu_flags, measured_agreement
from .onnx_export import SIDE_FILES, ExportedModel
from .quantize import NO_CLASSIFIER

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # OpenVINO's INFERENCE_PRECISION_HINT


def _openvino():
    try:
        import openvino
    except ImportError:
        raise UserError("--backend openvino needs OpenVINO: pip install -r requirements.txt") from None
    return openvino


class OpenVinoModel(ExportedModel):
    """An export folder compiled by OpenVINO for the CPU."""

    def __init__(self, folder: Path, precision: str):
        super().__init__(folder)
        parity = json.loads((folder / PARITY_FILE).read_text()) if (folder / PARITY_FILE).is_file() else {}
        if parity.get("quantization", "").startswith("int8 static"):
            raise UserError(f"{folder} is a static int8 export (QDQ), which OpenVINO scores wrongly here (the demo's "
                            "top-1 agreed on 58% of clips): serve it with --backend onnxruntime, or export with "
                            "--calibrate 0 (dynamic int8)")
        openvino = _openvino()
        model = folder / (OPENVINO_FILE if (folder / OPENVINO_FILE).is_file() else ONNX_FILE)
        try:
            self.compiled = openvino.Core().compile_model(str(model), "CPU", {
                "INFERENCE_PRECISION_HINT": HINTS[precision],
                "INFERENCE_NUM_THREADS": os.cpu_count() or 1})
        except RuntimeError as err:
            raise UserError(f"OpenVINO could not compile {model}: {first_line(err)}") from None
        self.main_input_name = self.compiled.inputs[0].get_any_name()

    def run(self, clips: np.ndarray) -> np.ndarray:
        return self.compiled(clips)[0].copy()


def load_openvino(folder: str | Path, sample_rate: int | None, requested: str) -> tuple[OpenVinoModel, ModelSpec]:
    """The export in `folder` on OpenVINO, in the precision `requested` (infer.precision) resolves to on this
    CPU, said on stderr as the torch backend says it."""
    folder = Path(folder)
    agreement = measured_agreement(json.loads((folder / "config.json").read_text())) \
        if (folder / "config.json").is_file() else None
    precision = choose_precision(requested, "cpu", cpu_flags(), agreement=agreement)
    announce(precision, "OpenVINO")
    model = OpenVinoModel(folder, precision.name)
    return model, describe(model, load_processor(str(folder)), trained_stride(model.config, sample_rate))


def classifier_layer(model) -> str:
    """The name of the last MatMul of an OpenVINO graph: the classifier head, the layer the scores come out of.
    Kept in float by the calibrated int8 copy: on the hard set's model (bench/precisions.py, 3 seeds, 64 test
    videos x 15 views) that kept more videos' and views' top-1 on every seed than the head in int8 (93.2% of
    videos against 90.1%), for one small layer (hidden size x classes) of the model's work
    (docs/serving.md#openvino---backend-openvino)."""
    matmuls = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"]
    if not matmuls:
        raise UserError(NO_CLASSIFIER)
    return matmuls[-1]


class Validation:
    """NNCF's accuracy control asked to keep the fp32 model's predictions: `clips` (normalised) in batches,
    `predicted` turning logits into the task's predictions (one row per clip), `max_drop` the share of clips
    whose prediction may change."""

    def __init__(self, clips: np.ndarray, predicted: Callable[[np.ndarray], np.ndarray], max_drop: float,
                 batch_size: int = 8):
        self.batches = [clips[i:i + batch_size] for i in range(0, len(clips), batch_size)]
        self.predicted, self.max_drop, self.wanted = predicted, max_drop, []

    def dataset(self, nncf, model) -> object:
        """The batches as NNCF's validation data, each with its index; the fp32 predictions to keep."""
        reference = _openvino().Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self.wanted = [self.predicted(reference(batch)[0]) for batch in self.batches]
        return nncf.Dataset(list(enumerate(self.batches)), lambda item: item[1])

    def agreement(self, compiled, items) -> float:
        """NNCF's metric: the share of the clips in `items` whose prediction is the fp32 model's."""
        hits = [(self.predicted(compiled(batch)[0]) == self.wanted[i]).all(1) for i, batch in items]
        return float(np.concatenate(hits).mean())


def _quantize(nncf, model, calibration: np.ndarray, float_head: bool, validation: Validation | None):
    """nncf.quantize with the transformer preset; with `validation`, its accuracy-controlled form, which
    returns layers to float, those whose int8 changes most first, until no more than validation.max_drop of the
    clips change prediction (SmoothQuant off there: with it, returning layers to float broke the model)."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    clips = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    options = {"model_type": nncf.ModelType.TRANSFORMER, "subset_size": len(calibration),
               "ignored_scope": nncf.IgnoredScope(names=[classifier_layer(model)] if float_head else [])}
    if validation is None:
        return nncf.quantize(model, clips, **options)
    no_smooth_quant = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=-1))
    return nncf.quantize_with_accuracy_control(
        model, clips, validation.dataset(nncf, model), validation.agreement, max_drop=validation.max_drop,
        drop_type=nncf.DropType.ABSOLUTE, advanced_quantization_parameters=no_smooth_quant, **options)


def quantize_openvino_int8(fp32: Path, out: Path, calibration: np.ndarray | None, float_head: bool = True,
                           validation: Validation | None = None) -> None:
    """`fp32`/model.onnx quantized by NNCF into `out`/model.xml: weights and activations int8, the activations'
    ranges calibrated on `calibration` (normalised clips, one at a time; NNCF's transformer preset keeps
    softmax and normalisation in float, and the classifier stays float unless not `float_head`: see
    classifier_layer; with `validation`, layers go back to float until its clips keep their predictions), or
    where it is None int8 weights only (nncf.compress_weights: no data needed). The side files copied, so the
    folder loads as any export does (`--backend openvino`)."""
    openvino = _openvino()
    import nncf

    model = openvino.Core().read_model(str(fp32 / ONNX_FILE))
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)  # not its INFO lines on each layer the ignored scope leaves in float
    try:
        if calibration is None:
            quantized = nncf.compress_weights(model)
        else:
            quantized = _quantize(nncf, model, calibration, float_head, validation)
    except Exception as err:  # NNCF fails in many types; name the model and why
        raise UserError(f"OpenVINO int8 quantization of {fp32 / ONNX_FILE} failed: {first_line(err)}") from None
    finally:
        nncf_log.setLevel(level)
    out.mkdir(parents=True, exist_ok=True)
    openvino.save_model(quantized, str(out / OPENVINO_FILE), compress_to_fp16=False)
    for name in SIDE_FILES:
        if (fp32 / name).is_file():
            shutil.copy(fp32 / name, out / name)
