"""infer.precision: the number format a trained model answers in (infer.py, eval.py, the timeline, the page).

`auto` picks bf16 where the hardware multiplies bf16 natively (a CPU with AMX or AVX512-BF16, a CUDA device
that supports it) and fp32 elsewhere; elsewhere bf16 is emulated and slower than fp32, so asking for it
there is refused in one line. A trained model also says how far bf16 may be trusted with it: train.py
scores the val videos in both and keeps the share whose prediction bf16 kept (config.json `bf16_agreement`);
below MIN_AGREEMENT `auto` stays in fp32, and says why. bf16 and fp16 run under torch.autocast: the matrix products in the low
precision, the normalisations and softmax in float32, the logits returned in float32 (the task's scores
are computed from those). Training has its own setting (train.mixed_precision)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.errors import UserError
from .model_spec import ModelSpec

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# the CPU flags (Linux's /proc/cpuinfo names) of native low-precision matrix instructions
NATIVE = {"bf16": ("amx_bf16", "avx512_bf16"), "fp16": ("amx_fp16", "avx512_fp16")}
AGREEMENT = "bf16_agreement"  # config.json: {"agreement", "videos", "views", "split"}, written by train.py
MIN_AGREEMENT = 0.99  # auto picks bf16 only for a model whose val predictions bf16 kept at least this often
# torch's CPU kernels reach the bf16/fp16 matrix units only from this capability up: below it (a CPU without
# AVX-512, or ATEN_CPU_CAPABILITY=avx2/default) they emulate or refuse ("pack_vnni2 is only supported when avx512")
NATIVE_KERNELS = ("AVX512",)


def measured_agreement(model_config: object) -> float | None:
    """The share of val videos whose prediction bf16 kept when the model was trained (None: not measured), from
    a model's config or its config.json read as a dict."""
    record = model_config.get(AGREEMENT) if isinstance(model_config, dict) else getattr(model_config, AGREEMENT, None)
    return float(record["agreement"]) if isinstance(record, dict) and "agreement" in record else None


@dataclass(frozen=True)
class Precision:
    name: str  # fp32, bf16 or fp16
    why: str  # one line: what was asked, and what the hardware has

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype; None for float32 (no autocast)."""
        return DTYPES[self.name]


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux names them; empty where /proc/cpuinfo is not there."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return frozenset()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def torch_kernels() -> str:
    """The instruction set torch's CPU kernels run at here (AVX512, AVX2, DEFAULT; ATEN_CPU_CAPABILITY lowers it)."""
    return torch.backends.cpu.get_cpu_capability()


def choose_precision(requested: str, device_type: str, flags: frozenset[str] = frozenset(),
                     cuda_bf16: bool = False, agreement: float | None = None, kernels: str | None = None
                     ) -> Precision:
    """The precision for `requested` (auto, fp32, bf16, fp16) on a device of `device_type` whose CPU has
    `flags` (cuda: whether the GPU supports bf16); a low precision the hardware lacks is refused. `kernels`:
    the capability torch's CPU kernels run at (torch_kernels; None where torch does not compute, as under
    OpenVINO): below NATIVE_KERNELS the CPU's units are out of torch's reach, as if the flags were absent.
    `auto` keeps fp32 for a model whose `agreement` (measured_agreement) is below MIN_AGREEMENT."""
    units = [f for name in ("bf16", "fp16") for f in NATIVE[name] if f in flags]
    if device_type == "cpu" and units and kernels is not None and not kernels.upper().startswith(NATIVE_KERNELS):
        return _below_native_kernels(requested, units, kernels)
    chosen = _by_hardware(requested, device_type, flags, cuda_bf16)
    if requested == "auto" and chosen.name == "bf16" and agreement is not None and agreement < MIN_AGREEMENT:
        return Precision("fp32", f"infer.precision: auto; the hardware has bf16, but it kept the prediction of only "
                                 f"{agreement:.1%} of this model's val videos when trained (under {MIN_AGREEMENT:.0%}; "
                                 f"config.json {AGREEMENT})")
    if requested == "auto" and chosen.name == "bf16" and agreement is not None:
        return dataclasses.replace(chosen, why=f"{chosen.why}; it kept the prediction of {agreement:.1%} of this "
                                               "model's val videos")
    return chosen


def _below_native_kernels(requested: str, units: list[str], kernels: str) -> Precision:
    """fp32 for auto and fp32, a refusal for bf16/fp16: the CPU has `units`, but torch's kernels run at
    `kernels`, below NATIVE_KERNELS."""
    reach = (f"this CPU has {' and '.join(units)}, but torch's CPU kernels run at {kernels} (ATEN_CPU_CAPABILITY), "
             f"below {'/'.join(NATIVE_KERNELS)}, where they use no bf16/fp16 matrix instructions")
    if requested in ("auto", "fp32"):
        return Precision("fp32", f"infer.precision: {requested}{', ' + reach if requested == 'auto' else ''}")
    raise UserError(f"infer.precision: {requested}: {reach}: set infer.precision: auto or fp32, or unset "
                    "ATEN_CPU_CAPABILITY")


def _by_hardware(requested: str, device_type: str, flags: frozenset[str], cuda_bf16: bool) -> Precision:
    if requested == "fp32":
        return Precision("fp32", "infer.precision: fp32")
    if device_type == "cpu":
        native = {name: [f for f in units if f in flags] for name, units in NATIVE.items()}
        if requested == "auto":
            if native["bf16"]:
                return Precision("bf16", f"infer.precision: auto, this CPU has {' and '.join(native['bf16'])}")
            return Precision("fp32", "infer.precision: auto, this CPU has no bf16 matrix instructions "
                                     "(amx_bf16, avx512_bf16)")
        if not native[requested]:
            raise UserError(f"infer.precision: {requested}: this CPU has no {requested} matrix instructions "
                            f"({', '.join(NATIVE[requested])}), so {requested} would run slower than fp32: "
                            "set infer.precision: auto or fp32")
        return Precision(requested, f"infer.precision: {requested}, this CPU has {' and '.join(native[requested])}")
    if device_type == "cuda":
        if requested == "auto":
            return Precision("bf16" if cuda_bf16 else "fp32",
                             f"infer.precision: auto, this GPU {'supports' if cuda_bf16 else 'lacks'} bf16")
        if requested == "bf16" and not cuda_bf16:
            raise UserError("infer.precision: bf16: this GPU does not support bf16: set infer.precision: auto, "
                            "fp16 or fp32")
        return Precision(requested, f"infer.precision: {requested}")
    if requested == "auto":
        return Precision("fp32", f"infer.precision: auto, fp32 on {device_type}")
    return Precision(requested, f"infer.precision: {requested}")


def choose_here(requested: str, device: str, agreement: float | None = None) -> Precision:
    """choose_precision on this machine's `device` (cpu, cuda...): its CPU's flags and torch's kernels, or
    whether its GPU supports bf16."""
    return choose_precision(requested, device, cpu_flags() if device == "cpu" else frozenset(),
                            device == "cuda" and torch.cuda.is_bf16_supported(), agreement,
                            torch_kernels() if device == "cpu" else None)


def with_precision(model: torch.nn.Module, spec: ModelSpec, requested: str) -> ModelSpec:
    """`spec` answering in the precision chosen for `model`'s device, said once on stderr."""
    precision = choose_here(requested, model.device.type, measured_agreement(model.config))
    announce(precision)
    return dataclasses.replace(spec, autocast=precision.dtype)


def announce(precision: Precision, runtime: str = "") -> None:
    """Say on stderr which precision answers, and why (`runtime`: the backend, where not torch)."""
    print(f"precision: {precision.name} ({precision.why}{f'; {runtime}' if runtime else ''})", file=sys.stderr)
