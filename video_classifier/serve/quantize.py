"""int8 exports: an fp32 ONNX export (onnx_export.py) quantized with onnxruntime's own tools, and its parity.

Static quantization (the default) calibrates the activations' ranges on real clips of the run's own val
videos and writes a QDQ model (weights int8 per channel, activations uint8); dynamic quantization
(calibration 0) quantizes the weights and computes each activation's range as it runs. Both are checked
on clips against torch's fp32 logits: int8 moves logits by far more than fp32's 1e-4, so what must hold is
each clip's prediction (at least `min_agreement` of the clips keep it), and the largest logit difference is
reported beside it. The folder takes the fp32 export's side files (configs, labels), so it loads as any
export does (`--backend onnxruntime`)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..core.errors import UserError, first_line
from ..core.run_folder import ONNX_FILE, PARITY_FILE
from ..core.task import Task
from .onnx_export import SIDE_FILES


class _Clips:
    """onnxruntime's CalibrationDataReader over normalised clips, one at a time."""

    def __init__(self, name: str, pixels: np.ndarray):
        self.items = iter([{name: pixels[i:i + 1]} for i in range(len(pixels))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


NO_CLASSIFIER = ("the exported model has no MatMul layer, so no classifier to keep in float: export a transformer "
                 "video classifier (VideoMAE, TimeSformer, ViViT)")


def classifier_node(model: Any) -> str:
    """The name of an ONNX graph's last MatMul or Gemm (nodes are stored in topological order): the classifier
    head, whose weights the static copy keeps in float, as OpenVINO's does (openvino_backend.classifier_layer;
    docs/serving.md#openvino---backend-openvino)."""
    names = [node.name for node in model.graph.node if node.op_type in ("MatMul", "Gemm")]
    if not names:
        raise UserError(NO_CLASSIFIER)
    return names[-1]


def quantize_int8(fp32: Path, out: Path, input_name: str, calibration: np.ndarray | None,
                  float_head: bool = True) -> None:
    """`fp32`/model.onnx quantized into `out`/model.onnx: static QDQ calibrated on `calibration` (normalised
    clips), its classifier left in float unless not `float_head`, or dynamic where it is None; the side files
    copied."""
    import onnx
    import onnxscript.optimizer
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out.mkdir(parents=True, exist_ok=True)
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer warns on the root logger of layers it leaves alone
    with tempfile.TemporaryDirectory() as work:
        optimized, prepared = Path(work) / "optimized.onnx", Path(work) / "prepared.onnx"
        try:
            # constants folded (older exporters leave the weights behind Transpose and Constant nodes, where the
            # quantizer does not see them), then shapes inferred as quantization wants
            onnx.save(onnxscript.optimizer.optimize(onnx.load(str(fp32 / ONNX_FILE))), str(optimized))
            quant_pre_process(str(optimized), str(prepared))
            if calibration is None:
                quantize_dynamic(str(prepared), str(out / ONNX_FILE), weight_type=QuantType.QInt8)
            else:
                head = [classifier_node(onnx.load(str(prepared)))] if float_head else []
                quantize_static(str(prepared), str(out / ONNX_FILE), _Clips(input_name, calibration),
                                quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=head)
        except Exception as err:  # onnxruntime's quantizer fails in many types; name the model and why
            raise UserError(f"int8 quantization of {fp32 / ONNX_FILE} failed: {first_line(err)}") from None
        finally:
            logging.getLogger().setLevel(quiet)
    for name in SIDE_FILES:
        if (fp32 / name).is_file():
            shutil.copy(fp32 / name, out / name)


def predictions(task: Task, logits: np.ndarray) -> np.ndarray:
    """The task's predictions from a batch of logits, one row per clip (the top-1; a multi-label model's labels
    over their thresholds), as int8 copies are judged on."""
    return task.predicted(task.scores(torch.from_numpy(logits))).reshape(len(logits), -1).numpy()


def int8_parity(out: Path, run: Callable[[np.ndarray], np.ndarray], pixels: torch.Tensor, reference: np.ndarray,
                task: Task, method: str, min_agreement: float) -> dict[str, Any]:
    """The int8 model in `out` (`run`: its logits of normalised clips) against torch's fp32 logits `reference` on
    `pixels`: written to parity.json; a UserError where fewer than `min_agreement` of the clips keep the
    task's prediction (the top-1; a multi-label model's labels over their thresholds)."""
    got = run(pixels.numpy())
    agreement = float((predictions(task, got) == predictions(task, reference)).all(1).mean())
    record = {"quantization": f"int8 {method}", "clips": len(pixels), "agreement": agreement,
              "min_agreement": min_agreement, "max_abs_logit_difference": float(np.abs(got - reference).max()),
              "logit_range": float(np.abs(reference).max()), "passed": agreement >= min_agreement}
    (out / PARITY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if agreement < min_agreement:
        raise UserError(f"int8 parity failed for {out}: {agreement:.1%} of {len(pixels)} clips keep torch's "
                        f"prediction (at least {min_agreement:.0%} required); use the fp32 export, or calibrate on "
                        f"more val videos (details in {out / PARITY_FILE})")
    return record
