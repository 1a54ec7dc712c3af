"""infer.precision (model/precision.py): what `auto` picks from a CPU's flags and a GPU's support, the
one-line refusals where the hardware lacks a precision, and bf16/fp16 logits against fp32 on a trained model
within a bound that follows from the format (so on every CPU kernel, native or emulated)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import run_main

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.data.datasets import ViewDataset
from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import load_prepared
from video_classifier.engine.evaluation import bf16_agreement
from video_classifier.model import precision
from video_classifier.model.modeling import load_trained
from video_classifier.model.precision import choose_precision

# flags as /proc/cpuinfo lists them (abridged to what matters)
SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile"})
COOPER_LAKE = frozenset({"avx2", "avx512f", "avx512_bf16"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16"})
ZEN3 = frozenset({"avx2", "fma"})
SKYLAKE = frozenset({"avx2", "avx512f"})


@pytest.mark.parametrize("device, flags, cuda_bf16, expected", [
    ("cpu", SAPPHIRE_RAPIDS, False, "bf16"),
    ("cpu", COOPER_LAKE, False, "bf16"),
    ("cpu", ZEN4, False, "bf16"),
    ("cpu", ZEN3, False, "fp32"),
    ("cpu", SKYLAKE, False, "fp32"),
    ("cpu", frozenset(), False, "fp32"),  # no /proc/cpuinfo (macOS, Windows)
    ("cuda", frozenset(), True, "bf16"),
    ("cuda", frozenset(), False, "fp32"),
    ("mps", frozenset(), False, "fp32"),
])
def test_auto_picks_bf16_only_where_the_hardware_multiplies_it(device, flags, cuda_bf16, expected):
    chosen = choose_precision("auto", device, flags, cuda_bf16)
    assert chosen.name == expected
    assert chosen.dtype == {"fp32": None, "bf16": torch.bfloat16}[expected]
    assert "infer.precision: auto" in chosen.why and "\n" not in chosen.why


@pytest.mark.parametrize("requested, device, flags, cuda_bf16, message", [
    ("bf16", "cpu", ZEN3, False, "infer.precision: bf16: this CPU has no bf16 matrix instructions (amx_bf16, "
                                 "avx512_bf16), so bf16 would run slower than fp32: set infer.precision: auto or fp32"),
    ("fp16", "cpu", COOPER_LAKE, False, "infer.precision: fp16: this CPU has no fp16 matrix instructions"),
    ("bf16", "cuda", frozenset(), False, "infer.precision: bf16: this GPU does not support bf16"),
])
def test_a_precision_the_hardware_lacks_is_refused_in_one_line(requested, device, flags, cuda_bf16, message):
    with pytest.raises(UserError) as err:
        choose_precision(requested, device, flags, cuda_bf16)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize("requested, flags, expected", [
    ("fp32", SAPPHIRE_RAPIDS, "fp32"), ("bf16", COOPER_LAKE, "bf16"), ("fp16", SAPPHIRE_RAPIDS, "fp16")])
def test_an_explicit_precision_is_kept_where_the_cpu_has_it(requested, flags, expected):
    assert choose_precision(requested, "cpu", flags).name == expected


@pytest.mark.parametrize("device, flags, cuda_bf16, agreement, expected", [
    ("cpu", SAPPHIRE_RAPIDS, False, 0.98, "fp32"),  # bf16 changed 2% of the val predictions when trained
    ("cpu", SAPPHIRE_RAPIDS, False, 0.99, "bf16"),  # the bound itself passes
    ("cpu", SAPPHIRE_RAPIDS, False, None, "bf16"),  # a model trained before it was measured
    ("cuda", frozenset(), True, 0.5, "fp32"),
    ("cpu", ZEN3, False, 1.0, "fp32"),  # no bf16 hardware: fp32 whatever the model
])
def test_auto_keeps_fp32_for_a_model_whose_val_predictions_bf16_changed(device, flags, cuda_bf16, agreement,
                                                                        expected):
    chosen = choose_precision("auto", device, flags, cuda_bf16, agreement)
    assert chosen.name == expected and "\n" not in chosen.why
    turned_down = flags != ZEN3 and agreement is not None and agreement < precision.MIN_AGREEMENT
    assert ("of this model's val videos" in chosen.why and "only" in chosen.why) == turned_down
    if turned_down:  # asked for by name, bf16 is what the user gets
        assert choose_precision("bf16", device, flags, cuda_bf16, agreement).name == "bf16"


@pytest.mark.parametrize("kernels, requested, expected", [
    ("AVX512", "auto", "bf16"), ("AVX512", "bf16", "bf16"),
    ("AVX2", "auto", "fp32"), ("DEFAULT", "auto", "fp32"), ("AVX2", "fp32", "fp32"),
    ("AVX2", "bf16", None), ("DEFAULT", "fp16", None),  # refused: torch's kernels would not use the units
])
def test_torch_kernels_below_avx512_cannot_reach_the_matrix_units(kernels, requested, expected):
    """ATEN_CPU_CAPABILITY=avx2 on a CPU with AMX: the flags are there but torch's bf16 kernels refuse
    ("pack_vnni2 is only supported when avx512"), so auto stays in fp32 and says why."""
    if expected is None:
        with pytest.raises(UserError) as err:
            choose_precision(requested, "cpu", SAPPHIRE_RAPIDS, kernels=kernels)
        assert f"torch's CPU kernels run at {kernels}" in str(err.value) and "\n" not in str(err.value)
        assert "unset ATEN_CPU_CAPABILITY" in str(err.value)
        with pytest.raises(UserError, match=f"this CPU has no {requested} matrix instructions"):
            choose_precision(requested, "cpu", ZEN3, kernels=kernels)  # no units: the flags' refusal instead
        return
    chosen = choose_precision(requested, "cpu", SAPPHIRE_RAPIDS, kernels=kernels)
    assert chosen.name == expected and "\n" not in chosen.why
    assert (kernels in chosen.why) == (requested == "auto" and kernels != "AVX512")


def test_auto_here_matches_what_torchs_kernels_can_run():
    """On this machine, whatever ATEN_CPU_CAPABILITY says: a bf16 that auto picks runs, and one it does not
    pick is because the flags or the kernels lack it."""
    chosen = choose_precision("auto", "cpu", precision.cpu_flags(), kernels=precision.torch_kernels())
    if chosen.name == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.nn.Linear(64, 8)(torch.randn(4, 64))
        assert out.dtype == torch.bfloat16
    else:
        assert "no bf16 matrix instructions" in chosen.why or precision.torch_kernels() in chosen.why


def test_without_the_units_the_flags_speak_whatever_the_kernels():
    chosen = choose_precision("auto", "cpu", ZEN3, kernels="AVX2")
    assert chosen.name == "fp32" and "this CPU has no bf16 matrix instructions" in chosen.why


def native_bf16_here() -> bool:
    return choose_precision("auto", "cpu", precision.cpu_flags(), kernels=precision.torch_kernels()).name == "bf16"


def test_training_measures_how_often_bf16_keeps_the_val_predictions(trained, tmp_path):
    """Where this CPU multiplies bf16 natively, train.py scores val in fp32 and bf16 (1 clip x 1 crop) and
    keeps the share of videos whose top-1 bf16 kept in config.json; eval.py and infer.py then read it through
    infer.precision auto. Elsewhere (emulated bf16 is several times slower) it says in one line that it did not
    check, and records nothing; the measurement itself is then checked here, in-process."""
    config_path, out, stdout = trained
    saved = json.loads((out / "config.json").read_text())
    val = [r for r in load_prepared(load_config(config_path).data.root)[1] if r.split == "val"]
    if native_bf16_here():
        record = saved[precision.AGREEMENT]
    else:
        assert precision.AGREEMENT not in saved
        (line,) = [line for line in stdout.splitlines() if line.startswith("bf16 inference not checked: ")]
        assert "bf16 matrix instructions" in line or precision.torch_kernels() in line
        config = load_config(config_path)
        model, spec = load_trained(str(out), 2)
        label2id = {label: i for i, label in spec.id2label.items()}
        record = bf16_agreement(model, spec, val, config, label2id)
        model.config.bf16_agreement = record
        model.config.save_pretrained(tmp_path)
        out = tmp_path
    assert record["videos"] == len(val) and record["split"] == "val" and record["views"] == "1 clip x 1 crop"
    assert 0 <= record["agreement"] <= 1 and record["agreement"] * len(val) == pytest.approx(
        round(record["agreement"] * len(val)))
    from transformers import AutoConfig

    assert precision.measured_agreement(AutoConfig.from_pretrained(out)) == record["agreement"]


def test_low_precision_logits_stay_within_the_formats_bound_of_fp32(trained):
    """Every test view of the trained tiny model, in fp32 and under bf16 / fp16 autocast. bf16 keeps 8
    significant bits (unit roundoff 2^-8 = 0.4%), fp16 11 (0.05%); over the few matrix products of the model
    the logits may drift by some multiples of that, relative to their scale: bound 4% (bf16) and 0.5% (fp16)
    of the largest logit. Where fp32's top-1 leads by more than twice the bound, the top-1 cannot change."""
    config_path, out, _ = trained
    config = load_config(config_path)
    model, spec = load_trained(str(out), config.data.sample_rate)
    label2id, records = load_prepared(config.data.root)
    test = [r for r in records if r.split in ("val", "test")]
    views = ViewDataset(test, config.data.root, label2id, spec.preprocess, 3, 3, choose_decoder("pyav").decode,
                        task=spec.task)
    clips = torch.cat([views[i]["views"] for i in range(len(test))])
    with torch.no_grad():
        reference = spec.logits(model, clips)
        scale = reference.abs().max().item()
        for dtype, share in ((torch.bfloat16, 0.04), (torch.float16, 0.005)):
            logits = dataclasses.replace(spec, autocast=dtype).logits(model, clips)
            assert logits.dtype == torch.float32
            bound = share * scale
            assert (logits - reference).abs().max().item() <= bound, dtype
            top2 = reference.topk(2, dim=1).values
            clear = (top2[:, 0] - top2[:, 1]) > 2 * bound
            assert clear.sum() >= len(test), "too few views with a clear top-1 to compare"
            assert torch.equal(logits.argmax(1)[clear], reference.argmax(1)[clear]), dtype


def test_infer_py_says_its_precision_and_refuses_one_the_cpu_lacks(trained, monkeypatch):
    config_path, out, _ = trained
    config = load_config(config_path)
    _, records = load_prepared(config.data.root)
    video = str(next(r.path for r in records if r.split == "test"))
    if not video.startswith("/"):
        video = f"{config.data.root}/{video}"
    auto = ("--set", "infer.precision=auto")  # the tests' config asks for fp32
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN3)
    answered = run_main("infer.py", "--config", str(config_path), "--model", str(out), *auto, video)
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert "precision: fp32 (infer.precision: auto, this CPU has no bf16 matrix instructions" in answered.stderr
    refused = run_main("infer.py", "--config", str(config_path), "--model", str(out),
                       "--set", "infer.precision=bf16", video)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("error: infer.precision: bf16: this CPU has no bf16")
    monkeypatch.setattr(precision, "cpu_flags", lambda: SAPPHIRE_RAPIDS)
    monkeypatch.setattr(precision, "torch_kernels", lambda: "AVX512")  # as torch runs on such a CPU
    answered = run_main("infer.py", "--config", str(config_path), "--model", str(out), *auto, video)
    # what bf16 kept of the model's val predictions when it was trained decides (the near-chance tiny model may
    # have a near tie that bf16 flips on some CPU kernel)
    kept = precision.measured_agreement(json.loads((out / "config.json").read_text()))
    if kept is None:  # not measured where bf16 is emulated (native_bf16_here): the hardware alone decides
        assert "precision: bf16 (infer.precision: auto, this CPU has amx_bf16 and avx512_bf16)\n" in answered.stderr
    elif kept >= precision.MIN_AGREEMENT:
        assert (f"precision: bf16 (infer.precision: auto, this CPU has amx_bf16 and avx512_bf16; it kept the "
                f"prediction of {kept:.1%} of this model's val videos)") in answered.stderr
    else:
        assert f"precision: fp32 (infer.precision: auto; the hardware has bf16, but it kept the prediction of only " \
               f"{kept:.1%}" in answered.stderr
    onnx = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--backend", "onnxruntime",
                    "--set", "infer.precision=bf16", video)
    assert onnx.returncode == 2 and "infer.precision: bf16 runs on the torch backend" in onnx.stderr
