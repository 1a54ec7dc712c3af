"""ONNX export with proven parity, and the onnxruntime backend of inference.

The model is exported with torch's recommended exporter (`torch.onnx.export(...,
dynamo=True)`), batch size dynamic, taking the clips as the model does, (B, T,
C, H, W) normalised float under its own input name, and returning (B, classes)
logits; the onnxruntime backend normalises uint8 clips where the torch path does
(ModelSpec.pixels) before handing them over. Beside `model.onnx` go the model
config (labels, frame stride), the processor configs and labels.json, so the
folder describes itself as a trained folder does. Parity is checked on real
clips of the data, at two batch sizes: the largest |difference| of the logits
must be at most `atol` (1e-4 in fp32), or the export fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig

from ..core.errors import UserError, first_line
from ..core.run_folder import ONNX_FILE, OPENVINO_FILE, PARITY_FILE
from ..model.model_spec import ModelSpec, describe, trained_stride
from ..model.modeling import load_processor

SIDE_FILES = ("config.json", "preprocessor_config.json", "video_preprocessor_config.json", "labels.json")


class _Logits(torch.nn.Module):
    """The model as exported: clips in, (B, classes) logits out."""

    def __init__(self, model: Any, spec: ModelSpec):
        super().__init__()
        self.model, self.key = model, spec.input_key

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return ModelSpec.class_scores(self.model(**{self.key: pixel_values}).logits)


def export_onnx(model: Any, spec: ModelSpec, source: Path, clips: torch.Tensor, out: Path,
                atol: float = 1e-4) -> dict[str, Any]:
    """Export `model` (from the trained folder `source`) to `out`/model.onnx and check parity on `clips`
    (N, T, C, H, W) uint8, as the datasets give them; returns the parity record (also written to
    parity.json). Raises UserError when parity does not hold."""
    out.mkdir(parents=True, exist_ok=True)
    wrapped = _Logits(model.eval().float(), spec).eval()
    pixels = spec.pixels(clips)  # what the model and the ONNX graph take
    example = pixels[:2]
    batch = torch.export.Dim("batch", min=1, max=1024)
    try:
        program = torch.onnx.export(wrapped, (example,), dynamo=True, input_names=[spec.input_key],
                                    output_names=["logits"], dynamic_shapes=({0: batch},),
                                    verbose=False)
        program.save(str(out / ONNX_FILE))
    except Exception as err:  # the exporter's failures come as many types; say which model and why
        raise UserError(f"torch.onnx.export could not export {spec.model_type}: {first_line(err)}") from None
    for name in SIDE_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, out / name)
    session = onnx_session(out / ONNX_FILE)
    worst, sizes = 0.0, []
    with torch.inference_mode():
        for size in (1, min(5, len(pixels))):  # two batch sizes: the batch axis is dynamic
            for first in range(0, len(pixels), size):
                chunk = pixels[first:first + size]
                expected = wrapped(chunk).numpy()
                got = session.run(None, {spec.input_key: chunk.numpy()})[0]
                worst = max(worst, float(np.abs(expected - got).max()))
            sizes.append(size)
    record = {"max_abs_logit_difference": worst, "atol": atol, "clips": len(clips), "batch_sizes": sizes,
              "passed": worst <= atol, "torch": torch.__version__, "onnxruntime": _ort().__version__}
    (out / PARITY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if worst > atol:
        raise UserError(f"ONNX parity failed for {out / ONNX_FILE}: logits differ by up to {worst:.2e} from torch's "
                        f"(allowed {atol:.0e}); do not use this export (details in {out / PARITY_FILE})")
    return record


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise UserError("onnxruntime is not installed: pip install onnxruntime (it is in requirements.txt)") from None
    return onnxruntime


def onnx_session(path: Path) -> Any:
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class ExportedModel:
    """An exported folder behind the interface ModelSpec scores through: `model(**inputs).logits`, on the
    CPU; a runtime gives `run` (float32 clips in, logits out)."""

    def __init__(self, folder: Path):
        if not (folder / ONNX_FILE).is_file() and not (folder / OPENVINO_FILE).is_file():
            raise UserError(f"no {ONNX_FILE} in {folder}: export it first (python export.py --model ...)")
        self.config = AutoConfig.from_pretrained(folder)
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def run(self, clips: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, **inputs: torch.Tensor) -> SimpleNamespace:
        (clips,) = inputs.values()
        return SimpleNamespace(logits=torch.from_numpy(self.run(clips.numpy())))


class OnnxModel(ExportedModel):
    """An exported folder on onnxruntime."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        if not (folder / ONNX_FILE).is_file():
            raise UserError(f"{folder} is an OpenVINO export ({OPENVINO_FILE}): serve it with --backend openvino")
        self.session = onnx_session(folder / ONNX_FILE)
        self.main_input_name = self.session.get_inputs()[0].name

    def run(self, clips: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.main_input_name: clips})[0]


def load_onnx(folder: str | Path, sample_rate: int | None = None) -> tuple[OnnxModel, ModelSpec]:
    folder = Path(folder)
    model = OnnxModel(folder)
    return model, describe(model, load_processor(str(folder)), trained_stride(model.config, sample_rate))
