"""Every video classifier transformers has goes through the same scripts, with no code of its own.

For each of the five model types that AutoModelForVideoClassification maps, a checkpoint folder is
saved with plain transformers (a random tiny backbone and its processor, nothing of ours), then
trained with train.py, evaluated from several views, run through infer.py, and reloaded with plain
transformers; our evaluation pixels are compared with the model's own processor's.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import transformers
from conftest import assert_metrics_add_up, tiny_config_dict, write_config
from references import processor_logits, spread_windows, video_timing, window_frames
from transformers import AutoModelForVideoClassification, AutoVideoProcessor

import eval as eval_script
import export as export_script
import infer as infer_script
import train as train_script
from video_classifier.core.config import TinyModelConfig
from video_classifier.data.decoding import decode_pyav, torchcodec_problem
from video_classifier.data.preprocessing import MultiCropTransform, Normalize
from video_classifier.model.model_spec import ARCHITECTURES, describe, tiny_model

SIZE, FRAMES = 32, 4


def plain_checkpoint(architecture: str, folder: Path) -> Path:
    """A random tiny backbone and its processor, saved with transformers alone (32 px, 4 frames)."""
    small = {"hidden_size": 32, "num_attention_heads": 2}
    square = {"size": {"shortest_edge": SIZE}, "crop_size": {"height": SIZE, "width": SIZE}}
    if architecture == "videomae":
        model = transformers.VideoMAEModel(transformers.VideoMAEConfig(
            image_size=SIZE, patch_size=8, num_frames=FRAMES, num_hidden_layers=1, intermediate_size=64,
            use_mean_pooling=True, **small))
        processor = transformers.VideoMAEVideoProcessor(**square)
    elif architecture == "timesformer":
        model = transformers.TimesformerModel(transformers.TimesformerConfig(
            image_size=SIZE, patch_size=8, num_frames=FRAMES, num_hidden_layers=1, intermediate_size=64, **small))
        processor = transformers.TimesformerVideoProcessor(**square)
    elif architecture == "vivit":
        model = transformers.VivitModel(transformers.VivitConfig(
            image_size=SIZE, num_frames=FRAMES, tubelet_size=[2, 8, 8], num_hidden_layers=1, intermediate_size=64,
            **small))
        processor = transformers.VivitVideoProcessor(**square)
    elif architecture == "vjepa2":
        model = transformers.VJEPA2Model(transformers.VJEPA2Config(
            crop_size=SIZE, patch_size=8, frames_per_clip=FRAMES, num_hidden_layers=1, mlp_ratio=2.0,
            pred_hidden_size=32, pred_num_attention_heads=2, pred_num_hidden_layers=1, num_pooler_layers=1, **small))
        processor = transformers.VJEPA2VideoProcessor(**square)
    else:  # videoprism: transformers maps it to LLaVA-OneVision's video processor
        model = transformers.VideoPrismVisionModel(transformers.VideoPrismVisionConfig(
            image_size=SIZE, num_frames=FRAMES, tubelet_size=[1, 8, 8], num_spatial_layers=1, num_temporal_layers=1,
            intermediate_size=64, **small))
        processor = transformers.LlavaOnevisionVideoProcessor(size={"height": SIZE, "width": SIZE})
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def trained(request, tiny_workspace, tmp_path_factory):
    """(architecture, config path, output folder) after train.py on a plain-transformers checkpoint."""
    architecture = request.param
    root = tmp_path_factory.mktemp(architecture)
    data = tiny_config_dict(root)
    data["data"]["root"] = str(tiny_workspace / "data")
    data["model"] = {"checkpoint": str(plain_checkpoint(architecture, root / "checkpoint"))}
    data["eval"] = {"num_clips": 2, "num_crops": 2}
    config_path = write_config(root / "config.yaml", data)
    train_script.main(["--config", str(config_path)])
    return architecture, config_path, Path(data["train"]["output_dir"])


def test_trains_and_evaluates_from_several_views(trained):
    architecture, _, out = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["views"] == "2 clips x 2 crops" and metrics["test"]["videos"] == 8
    assert metrics["test"]["clips"] == 24
    assert_metrics_add_up(metrics["test"])
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_type"] == ARCHITECTURES[architecture] and len(saved["id2label"]) == 8


def test_infer_gives_the_evaluations_scores_and_eval_runs(trained, tiny_workspace, capsys):
    _, config_path, out = trained
    evaluated = {e["video"]: e["scores"] for e in json.loads((out / "scores_test.json").read_text())}
    capsys.readouterr()
    infer_script.main(["--config", str(config_path), "--model", str(out), "--json", "--top-k", "8",
                       str(tiny_workspace / "data" / "test")])
    predictions = json.loads(capsys.readouterr().out)
    assert len(predictions) == 8
    for p in predictions:
        expected = evaluated[str(Path(p["video"]).relative_to(tiny_workspace / "data"))]
        for label, score in zip(p["labels"], p["scores"]):
            assert score == pytest.approx(expected[label], abs=1e-5)
    eval_script.main(["--config", str(config_path), "--model", str(out), "--split", "val", "--clips", "1",
                      "--crops", "1"])
    assert json.loads((out / "eval_val_1x1.json").read_text())["val"]["videos"] == 8


def test_infer_gives_the_scores_of_plain_transformers(trained, tiny_workspace, capsys):
    """infer.py's 1 clip x 1 crop scores are those of the output folder run as its model card shows: loaded
    with plain transformers, the centre clip's frames through its own processor, softmax of
    model(**inputs).logits. The processors here sample no frames (do_sample_frames off), so the clip is
    chosen as its definition says: the centre window of num_frames x sample_rate / fps s (both from the
    saved config.json), decoded by pytorchvideo's PyAV path and subsampled evenly. Not checked here: which
    frames the project picks inside a window (test_decoding.py checks them against pytorchvideo)."""
    architecture, config_path, out = trained
    model = AutoModelForVideoClassification.from_pretrained(out).eval()
    processor = AutoVideoProcessor.from_pretrained(out)
    videos = sorted((tiny_workspace / "data" / "test").glob("*/*.avi"))[:3]
    capsys.readouterr()
    infer_script.main(["--config", str(config_path), "--model", str(out), "--json", "--top-k", "8", "--clips", "1",
                       "--crops", "1", *map(str, videos)])
    predictions = json.loads(capsys.readouterr().out)
    num_frames = model.config.num_frames  # as train.py saves it for the pipeline (V-JEPA 2 too)
    for video, predicted in zip(videos, predictions):
        duration, fps = video_timing(video)
        ((start, end),) = spread_windows(duration, Fraction(num_frames * model.config.sample_rate) / fps, 1)
        logits = processor_logits(model, processor, window_frames(video, start, end, num_frames))
        expected = {model.config.id2label[i]: p for i, p in enumerate(logits.softmax(-1).tolist())}
        # within 2e-7 here: our pixels and the processor's differ by rounding only (see the next test);
        # a crop 5 px off centre moves the scores by 1e-3
        assert predicted["scores"] == pytest.approx([expected[k] for k in predicted["labels"]], abs=1e-5), \
            architecture


def test_evaluation_pixels_equal_the_models_own_processor(trained, tiny_workspace):
    """Our evaluation view of a clip and the saved processor's output for the same frames."""
    _, _, out = trained
    model = AutoModelForVideoClassification.from_pretrained(out)
    processor = AutoVideoProcessor.from_pretrained(out)
    spec = describe(model, processor, model.config.sample_rate).preprocess
    video = sorted((tiny_workspace / "data" / "test").glob("*/*.avi"))[0]
    frames = decode_pyav(video, [0, 2, 4, 6])  # (T, C, H, W) uint8
    ours = Normalize(spec)(MultiCropTransform(spec, num_crops=1)(frames)[0])
    output = processor(videos=[frames.permute(0, 2, 3, 1).numpy()], return_tensors="pt", do_sample_frames=False)
    theirs = output[model.main_input_name][0]
    assert ours.shape == theirs.shape == (FRAMES, 3, SIZE, SIZE)
    # the same resize filter and normalisation; both resize uint8 frames with torchvision, the
    # processor in float, so pixels differ by rounding only (a grey level at most)
    assert (ours - theirs).abs().max() <= 1.01 / 255 / min(spec.std)


@pytest.mark.torchcodec
@pytest.mark.skipif(torchcodec_problem() is not None, reason="transformers' pipeline decodes with torchcodec")
def test_pipeline_mode(trained, tiny_workspace, capsys):
    architecture, config_path, out = trained
    video = str(sorted((tiny_workspace / "data" / "test").glob("*/*.avi"))[0])
    capsys.readouterr()
    args = ["--config", str(config_path), "--model", str(out), "--mode", "pipeline", "--json", "--top-k", "3", video]
    if architecture == "videoprism":
        # the pipeline's postprocess takes logits[0] as the class scores; VideoPrism's logits are
        # (batch, 1, classes), so it gets a (1, classes) row and fails: a one-line error, not a traceback
        with pytest.raises(SystemExit) as stopped:
            infer_script.main(args)
        assert stopped.value.code == 2
        assert "pipeline cannot read the outputs of videoprism_vision_model" in capsys.readouterr().err
        return
    infer_script.main(args)
    (prediction,) = json.loads(capsys.readouterr().out)
    assert len(prediction["labels"]) == 3 and all(isinstance(s, float) for s in prediction["scores"])


def test_onnx_export_has_parity_and_onnxruntime_infers_alike(trained, tiny_workspace, tmp_path, capsys):
    """export.py on real clips (logits within 1e-4 of torch's at batch sizes 1 and 5), then infer.py on
    onnxruntime: the same top-1 and scores as on torch for every test video."""
    architecture, config_path, out = trained
    onnx = tmp_path / "onnx"
    export_script.main(["--config", str(config_path), "--model", str(out), "--out", str(onnx), "--clips", "6"])
    parity = json.loads((onnx / "parity.json").read_text())
    assert parity["passed"] and parity["max_abs_logit_difference"] <= 1e-4 and parity["batch_sizes"] == [1, 5]
    assert {"model.onnx", "config.json", "labels.json"} <= {p.name for p in onnx.iterdir()}
    videos = str(tiny_workspace / "data" / "test")
    scores = {}
    for backend, model in (("torch", out), ("onnxruntime", onnx)):
        capsys.readouterr()
        infer_script.main(["--config", str(config_path), "--model", str(model), "--backend", backend, "--json",
                           "--top-k", "3", videos])
        scores[backend] = json.loads(capsys.readouterr().out)
    assert len(scores["torch"]) == 8
    for a, b in zip(scores["torch"], scores["onnxruntime"]):
        assert a["labels"][0] == b["labels"][0], architecture
        assert max(abs(x - y) for x, y in zip(a["scores"], b["scores"])) < 1e-4


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_tiny_init_builds_each_architecture(architecture):
    tiny = TinyModelConfig(architecture=architecture, image_size=SIZE, patch_size=8, num_frames=FRAMES,
                           tubelet_size=2, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64)
    backbone, processor = tiny_model(tiny, seed=0)
    assert backbone.config.model_type == ARCHITECTURES[architecture]
    frames = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    pixels = next(v for v in processor(videos=[frames], return_tensors="pt", do_sample_frames=False).values())
    assert pixels.shape == (1, FRAMES, 3, SIZE, SIZE)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_multi_label_runs_on_every_architecture(architecture, multilabel_workspace, tmp_path, capsys):
    """train.py on the multi-label set saves problem_type; infer.py's 1x1 scores are the sigmoid of the plain
    model's logits on its own processor's pixels of the centre clip, and the stock pipeline with no arguments
    gives them too (VideoPrism: the pipeline cannot read its (1, 1, classes) logits, as for one label)."""
    from transformers import pipeline

    from video_classifier.data.manifest import load_prepared

    data = tiny_config_dict(tmp_path)
    data["data"]["root"] = str(multilabel_workspace / "data")
    data["model"] = {"checkpoint": str(plain_checkpoint(architecture, tmp_path / "checkpoint"))}
    data["train"]["max_steps"] = 3
    data["eval"] = {"num_clips": 1, "num_crops": 1}
    config_path = write_config(tmp_path / "config.yaml", data)
    train_script.main(["--config", str(config_path)])
    out = Path(data["train"]["output_dir"])
    model = AutoModelForVideoClassification.from_pretrained(out).eval()
    assert model.config.problem_type == "multi_label_classification"
    root = multilabel_workspace / "data"
    test = [r for r in load_prepared(root)[1] if r.split == "test"][:3]
    capsys.readouterr()
    infer_script.main(["--config", str(config_path), "--model", str(out), "--json", "--top-k", "8",
                       *[str(root / r.path) for r in test]])
    predictions = json.loads(capsys.readouterr().out)
    processor = AutoVideoProcessor.from_pretrained(out)
    num_frames = model.config.num_frames  # as train.py saves it for the pipeline (V-JEPA 2 too)
    classify = None if architecture == "videoprism" else pipeline("video-classification", model=str(out))
    for record, predicted in zip(test, predictions):
        # the centre window, as in test_infer_gives_the_scores_of_plain_transformers
        duration, fps = video_timing(root / record.path)
        ((start, end),) = spread_windows(duration, Fraction(num_frames * model.config.sample_rate) / fps, 1)
        clip = window_frames(root / record.path, start, end, num_frames)
        sigmoid = processor_logits(model, processor, clip).sigmoid()
        expected = {model.config.id2label[i]: float(s) for i, s in enumerate(sigmoid)}
        # our pixels and the processor's differ by rounding only, as for one label
        assert predicted["scores"] == pytest.approx([expected[k] for k in predicted["labels"]], abs=1e-5)
        if classify is not None:
            frames = clip.permute(0, 2, 3, 1).numpy()  # the pipeline takes a (T, H, W, C) array as the video
            piped = {r["label"]: r["score"] for r in classify(frames, top_k=8)}
            assert all(piped[k] == pytest.approx(v, abs=1e-5) for k, v in expected.items()), architecture
