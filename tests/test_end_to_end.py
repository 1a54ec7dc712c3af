"""The real scripts, end to end on tiny data: prepare -> train -> infer, asserting on what they wrote."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import assert_metrics_add_up, run_main, run_script, tiny_config_dict, write_config
from safetensors.torch import load_file

from video_classifier.data.decoding import torchcodec_problem
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import MultiCropTransform, Normalize
from video_classifier.model.model_spec import ModelSpec, describe
from video_classifier.serve.inference import video_records


def torchcodec_loads() -> bool:
    return torchcodec_problem() is None


@pytest.mark.torchcodec
def test_training_writes_a_self_describing_model(trained, tiny_workspace):
    _, out, stdout = trained
    for name in ("model.safetensors", "config.json", "video_preprocessor_config.json", "preprocessor_config.json",
                 "labels.json",
                 "config.yaml", "metrics.json", "training.png", "confusion_val.png", "confusion_test.png",
                 "scores_test.json"):
        assert (out / name).is_file(), name
    model_config = json.loads((out / "config.json").read_text())
    label2id, _ = load_prepared(tiny_workspace / "data")
    assert model_config["label2id"] == label2id
    assert model_config["sample_rate"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    for split, videos in (("val", 8), ("test", 8)):
        m = metrics[split]
        assert m["videos"] == videos and m["clips"] == 3 * videos and m["views"] == "5 clips x 3 crops"
        assert_metrics_add_up(m)
        assert (m["clip_top1"] * m["clips"]) == pytest.approx(round(m["clip_top1"] * m["clips"]))  # a count of clips
        assert sum(map(sum, m["confusion_matrix"]["rows_true_columns_predicted"])) == videos
        assert sorted(m["per_class"]) == sorted(label2id)
    assert f"test: video-level top-1 {metrics['test']['top1']:.4f}" in stdout
    decoder = "torchcodec" if torchcodec_loads() else "pyav"
    assert f"data: native ClipDataset, {decoder} decoder (data.decoder: auto" in stdout
    assert "4 steps/epoch x 2 epochs = 8 steps" in stdout
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["epochs"] == 2 and resolved["model"]["tiny_init"]["image_size"] == 32


def test_the_output_folder_holds_a_model_card_huggingface_hub_parses(trained):
    from huggingface_hub import ModelCard

    _, out, stdout = trained
    card = ModelCard.load(out / "README.md")
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert card.data.pipeline_tag == "video-classification" and card.data.library_name == "transformers"
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert values == {"top-1, 5 clips x 3 crops": round(test["top1"], 4),
                      "top-1, 1 clip x 1 crop": round(test["centre_view_top1"], 4),
                      "top-1, clip level": round(test["clip_top1"], 4),
                      "top-1, transformers pipeline": round(test["pipeline_top1"], 4)}
    assert all(r.dataset_split == "test" and r.task_type == "video-classification" for r in card.data.eval_results)
    assert card.data.base_model is None  # a local checkpoint folder is not a Hub id
    assert "![confusion matrix of the test split](confusion_test.png)" in card.text
    assert "python train.py --config config.yaml" in card.text and f"model card: {out / 'README.md'}" in stdout


def test_second_run_reuses_the_finished_one(trained):
    config_path, out, _ = trained
    before = (out / "model.safetensors").stat().st_mtime_ns
    result = run_main("train.py", "--config", str(config_path))
    assert result.returncode == 0 and "reusing it" in result.stdout
    assert (out / "model.safetensors").stat().st_mtime_ns == before
    other = run_main("train.py", "--config", str(config_path), "--set", "train.learning_rate=0.1")
    assert other.returncode == 2 and "finished run with another config" in other.stderr


def test_infer_gives_the_evaluations_scores(trained, tiny_workspace):
    """infer.py reports, for each test video, the scores the evaluation computed for it."""
    config_path, out, _ = trained
    evaluated = {e["video"]: e["scores"] for e in json.loads((out / "scores_test.json").read_text())}
    test_folder = tiny_workspace / "data" / "test"
    result = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--json", "--top-k", "8",
                        str(test_folder))  # a folder: every video under it
    assert result.returncode == 0, result.stderr[-2000:]
    predictions = json.loads(result.stdout)
    assert len(predictions) == len(evaluated) == 8
    for p in predictions:
        expected = evaluated[str(Path(p["video"]).relative_to(tiny_workspace / "data"))]
        assert p["views"] == "5 clips x 3 crops"
        assert p["scores"] == sorted(p["scores"], reverse=True)
        assert len(p["labels"]) == len(expected)  # top-k 8: every class of the tiny set shown
        assert p["scores"] == pytest.approx([expected[label] for label in p["labels"]], abs=1e-5)


@pytest.mark.parametrize("decoder", [
    "pyav", pytest.param("torchcodec", marks=[pytest.mark.torchcodec, pytest.mark.skipif(
        not torchcodec_loads(), reason="torchcodec needs the OS's FFmpeg libraries")])])
def test_infer_agrees_with_plain_transformers(trained, tiny_workspace, decoder):
    """infer.py's 2 clips x 1 crop scores are those of the saved folder run as its model card shows: plain
    transformers, its own processor on each clip's frames, softmax of model(**inputs).logits averaged over the
    clips. The clips are made without project code: the first and the last window of num_frames x
    sample_rate / fps s (config.json's), decoded by pytorchvideo's PyAV path and subsampled evenly; infer.py
    decodes with our PyAV decoder, and with torchcodec where it loads."""
    from fractions import Fraction

    from references import processor_logits, spread_windows, video_timing, window_frames
    from transformers import AutoModelForVideoClassification, AutoVideoProcessor

    config_path, out, _ = trained
    videos = sorted((tiny_workspace / "data" / "test").glob("*/*.avi"))[:2]
    result = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--json", "--clips", "2",
                      "--crops", "1", "--set", f"data.decoder={decoder}", *map(str, videos))
    assert result.returncode == 0, result.stderr[-2000:]
    predictions = json.loads(result.stdout)
    assert len(predictions) == len(videos)

    model = AutoModelForVideoClassification.from_pretrained(out).eval()
    processor = AutoVideoProcessor.from_pretrained(out)
    num_frames = model.config.num_frames
    for video, prediction in zip(videos, predictions):
        assert prediction["views"] == "2 clips x 1 crops" and len(prediction["labels"]) == 3
        duration, fps = video_timing(video)
        windows = spread_windows(duration, Fraction(num_frames * model.config.sample_rate) / fps, 2)
        probs = torch.stack([processor_logits(model, processor, window_frames(video, start, end, num_frames))
                             .softmax(-1) for start, end in windows]).mean(0)
        expected = {model.config.id2label[i]: p for i, p in enumerate(probs.tolist())}
        # our pixels and the processor's differ by rounding only; a crop 1 px off centre, or a mean 0.02 off,
        # fails this
        assert prediction["scores"] == pytest.approx([expected[k] for k in prediction["labels"]], abs=1e-5)


def test_output_loads_with_every_processor_class_users_reach_for(trained, tiny_workspace):
    """The guide's VideoMAEImageProcessor, AutoImageProcessor (transformers 4.x reads preprocessor_config.json
    too) and AutoVideoProcessor all load the output and give the same pixels; no project code involved."""
    import av
    import numpy as np
    from transformers import AutoImageProcessor, AutoVideoProcessor, VideoMAEImageProcessor

    _, out, _ = trained
    video = sorted((tiny_workspace / "data" / "test").glob("*/*.avi"))[0]
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(4), container.decode(video=0))]
    guide = VideoMAEImageProcessor.from_pretrained(out)(frames, return_tensors="pt")["pixel_values"]
    auto_image = AutoImageProcessor.from_pretrained(out)(frames, return_tensors="pt")["pixel_values"]
    auto_video = AutoVideoProcessor.from_pretrained(out)(videos=[np.stack(frames)], return_tensors="pt")["pixel_values"]
    assert guide.shape == (1, 4, 3, 32, 32)  # 64x48 frames: short side to 32, centre crop 32x32
    assert torch.equal(guide, auto_image)
    assert torch.allclose(guide, auto_video, atol=1e-6)
    image_config = json.loads((out / "preprocessor_config.json").read_text())
    video_config = json.loads((out / "video_preprocessor_config.json").read_text())
    for key in ("size", "crop_size", "image_mean", "image_std", "rescale_factor", "resample"):
        assert image_config[key] == video_config[key], key


def test_eval_script_writes_one_view_metrics(trained):
    config_path, out, _ = trained
    result = run_main("eval.py", "--config", str(config_path), "--model", str(out), "--split", "val",
                        "--clips", "1", "--crops", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "eval_val_1x1.json").read_text())["val"]
    assert metrics["views"] == "1 clips x 1 crops" and metrics["videos"] == 8
    assert (out / "confusion_val_1x1.png").is_file() and (out / "scores_val_1x1.json").is_file()
    assert f"val: video-level top-1 {metrics['top1']:.4f}" in result.stdout
    # training's evaluation took its 1x1 number from the centre view among its 5 x 3: the same view
    assert json.loads((out / "metrics.json").read_text())["val"]["centre_view_top1"] == metrics["top1"]


@pytest.mark.torchcodec  # both CI passes: PyAV's frames where FFmpeg's libraries are hidden, a path where not
def test_stock_pipeline_accuracy_is_what_the_pipeline_gives(trained, tiny_workspace):
    """The stock pipeline, called here as its users call it (no project code), is right on as many test
    videos as metrics.json says. Without torchcodec it cannot open a path: it gets PyAV's frames.
    Not split in two: training wrote metrics.json with the decoder this machine has, so each branch is the
    only right one where it runs."""
    import av
    import numpy as np
    from transformers import pipeline

    _, out, stdout = trained
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    classify = pipeline("video-classification", model=str(out))
    videos = sorted((tiny_workspace / "data" / "test").glob("*/*.avi"))
    right = 0
    for video in videos:
        if torchcodec_loads():
            frames = str(video)
        else:
            with av.open(str(video)) as container:
                frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        right += classify(frames, top_k=1)[0]["label"] == video.parent.name
    assert metrics["pipeline_top1"] == right / len(videos) and metrics["pipeline_failed"] == []
    assert metrics["pipeline_input"] == ("video path (torchcodec)" if torchcodec_loads() else
                                         "every frame, decoded with PyAV")
    assert f"stock pipeline {right / len(videos):.4f}" in stdout


@pytest.mark.torchcodec
@pytest.mark.skipif(not torchcodec_loads(), reason="torchcodec needs the OS's FFmpeg libraries")
def test_pipeline_mode_loads_the_saved_folder_and_samples_as_documented(trained, tiny_workspace):
    """The pipeline takes frames i * total // num_frames over the whole video, then one centre crop."""
    from transformers import AutoModelForVideoClassification, AutoVideoProcessor, pipeline

    from video_classifier.data.decoding import decode_torchcodec

    config_path, out, _ = trained
    video = sorted((tiny_workspace / "data" / "test").glob("*/*.avi"))[0]
    result = run_script("infer.py", "--config", str(config_path), "--model", str(out), "--mode", "pipeline",
                        "--json", "--top-k", "8", str(video))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("note: --mode pipeline samples") == 1
    (prediction,) = json.loads(result.stdout)
    assert sorted(prediction["labels"]) == sorted(json.loads((out / "labels.json").read_text())["label2id"])

    # the same pipeline in process, logits unsquashed, against our decoder and crop on the documented frames
    model = AutoModelForVideoClassification.from_pretrained(out).eval()
    spec = describe(model, AutoVideoProcessor.from_pretrained(out), model.config.sample_rate).preprocess
    (record,) = video_records([video])

    def our_logits(indices: list[int]) -> dict[str, float]:
        views = Normalize(spec)(MultiCropTransform(spec, num_crops=1)(decode_torchcodec(video, indices)))
        with torch.no_grad():
            return {model.config.id2label[i]: v for i, v in enumerate(model(pixel_values=views).logits[0].tolist())}

    documented = our_logits([i * record.frames // spec.num_frames for i in range(spec.num_frames)])
    consecutive = our_logits(list(range(spec.num_frames)))  # what older pipelines took
    piped = {r["label"]: r["score"] for r in pipeline("video-classification", model=str(out))(
        str(video), top_k=8, function_to_apply="none")}
    assert all(abs(piped[k] - documented[k]) < 1e-4 for k in piped)
    assert any(abs(piped[k] - consecutive[k]) > 1e-3 for k in piped)


@pytest.mark.torchcodec
@pytest.mark.skipif(torchcodec_loads(), reason="FFmpeg's libraries load here: the pipeline works")
def test_pipeline_mode_without_torchcodec_is_one_line(trained, tiny_workspace):
    config_path, out, _ = trained
    video = str(next((tiny_workspace / "data" / "test").glob("*/*.avi")))
    line = one_line_error(run_main("infer.py", "--config", str(config_path), "--model", str(out),
                                     "--mode", "pipeline", video))
    assert "--mode pipeline needs torchcodec" in line and "use --mode manual" in line


@pytest.mark.torchcodec
@pytest.mark.skipif(not torchcodec_loads(), reason="torchcodec needs the OS's FFmpeg libraries")
def test_phone_videos_get_the_same_scores_on_both_decoders(trained, tmp_path):
    """A variable-frame-rate video and one rotated 90 degrees (as phones write them): the same frames,
    so the same top-1 and scores, from PyAV and torchcodec."""
    from videos import write

    config_path, out, _ = trained
    videos = [str(write(tmp_path / "vfr", "hevc", n=40, variable_rate=True)),
              str(write(tmp_path / "rotated", "h264", n=40, rotation=90))]
    scores = {}
    for decoder in ("pyav", "torchcodec"):
        result = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--json", "--top-k", "3",
                          "--set", f"data.decoder={decoder}", *videos)
        assert result.returncode == 0, result.stderr[-2000:]
        scores[decoder] = json.loads(result.stdout)
    assert len(scores["pyav"]) == len(scores["torchcodec"]) == len(videos)
    for a, b in zip(scores["pyav"], scores["torchcodec"], strict=True):
        assert a["labels"] == b["labels"] and len(a["scores"]) == 3
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-5)


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_wrong_config_key_is_one_line(trained):
    config_path, _, _ = trained
    line = one_line_error(run_main("train.py", "--config", str(config_path), "--set", "train.lr=1"))
    assert "unknown config key train.lr" in line and "learning_rate" in line


def test_missing_data_folder_is_one_line(tmp_path):
    data = tiny_config_dict(tmp_path)
    config_path = write_config(tmp_path / "config.yaml", data)
    line = one_line_error(run_main("train.py", "--config", str(config_path)))
    assert str(tmp_path / "data") in line and "prepare_data.py" in line


def test_missing_video_is_one_line(trained):
    config_path, out, _ = trained
    line = one_line_error(run_main("infer.py", "--config", str(config_path), "--model", str(out), "no/such.avi"))
    assert "video no/such.avi not found" in line


def test_missing_model_folder_is_one_line(trained, tiny_workspace):
    config_path, _, _ = trained
    video = str(next((tiny_workspace / "data" / "test").glob("*/*.avi")))
    line = one_line_error(run_main("infer.py", "--config", str(config_path), "--model", "./no_model_here", video))
    assert "no_model_here" in line


def test_corrupt_video_at_inference_is_one_line(trained, tmp_path):
    config_path, out, _ = trained
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"\x00" * 1000)
    line = one_line_error(run_main("infer.py", "--config", str(config_path), "--model", str(out), str(bad)))
    assert "broken.avi" in line


def test_eval_and_export_given_a_run_folder_read_its_own_config(trained, tmp_path):
    """--model FOLDER without --config: the run's resolved config.yaml (data root, views, decoder) is used
    and said; an explicit --config still wins."""
    _, out, _ = trained
    own = f"config: {out / 'config.yaml'}, the run's own"
    result = run_main("eval.py", "--model", str(out), "--clips", "1", "--crops", "1", "--out", str(tmp_path / "eval"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert own in result.stderr and (tmp_path / "eval" / "eval_test_1x1.json").is_file()
    result = run_main("export.py", "--model", str(out), "--out", str(tmp_path / "onnx"), "--clips", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert own in result.stderr and (tmp_path / "onnx" / "model.onnx").is_file()
    other = tiny_config_dict(tmp_path)
    other["data"]["root"] = str(tmp_path / "nowhere")
    result = run_main("eval.py", "--config", str(write_config(tmp_path / "other.yaml", other)), "--model", str(out))
    assert result.returncode == 2 and "nowhere" in result.stderr and own not in result.stderr


def test_out_of_memory_in_the_model_is_not_called_a_bad_video(trained, tiny_workspace, monkeypatch):
    """infer.py: a failure in the model's forward keeps its own type and message ("check that the file
    plays" is said only of videos that do not decode)."""
    config_path, out, _ = trained
    video = next((tiny_workspace / "data" / "test").glob("*/*.avi"))

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ModelSpec, "logits", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory"):
        run_main("infer.py", "--config", str(config_path), "--model", str(out), str(video))


def test_interrupted_run_resumes_from_its_last_checkpoint(trained, tmp_path):
    """A run that stopped after its first epoch picks up there when the same command runs again, and ends
    where the run that was never interrupted ended: the same weights (1e-5: the Trainer restores the
    optimizer, scheduler and RNG states at the epoch boundary) and the same test scores."""
    config_path, out, _ = trained
    data = yaml.safe_load(config_path.read_text())
    data["train"]["output_dir"] = str(tmp_path / "run")
    shutil.copytree(out / "checkpoint-4", tmp_path / "run" / "checkpoint-4")  # what a crash at step 5 leaves
    resumed_config = write_config(tmp_path / "config.yaml", data)
    result = run_main("train.py", "--config", str(resumed_config))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming from {tmp_path / 'run' / 'checkpoint-4'}" in result.stdout
    state = json.loads((tmp_path / "run" / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    resumed, whole = load_file(tmp_path / "run" / "model.safetensors"), load_file(out / "model.safetensors")
    assert resumed.keys() == whole.keys()
    for key in whole:
        assert torch.allclose(resumed[key], whole[key], atol=1e-5), key
    scores = [json.loads((folder / "scores_test.json").read_text()) for folder in (tmp_path / "run", out)]
    assert [s["video"] for s in scores[0]] == [s["video"] for s in scores[1]] and scores[0]
    for a, b in zip(*scores, strict=True):
        assert list(a["scores"].values()) == pytest.approx(list(b["scores"].values()), abs=1e-5), a["video"]


def test_pytorchvideo_backend_trains(trained, tmp_path):
    config_path, _, _ = trained
    result = run_main("train.py", "--config", str(config_path), "--set", "data.backend=pytorchvideo",
                        "--set", f"train.output_dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "data: pytorchvideo LabeledVideoDataset, PyAV decoder" in result.stdout
    assert_metrics_add_up(json.loads((tmp_path / "run" / "metrics.json").read_text())["test"])


def test_tensorboard_logging_writes_event_files_tensorboard_reads(trained, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config_path, _, _ = trained
    out = tmp_path / "run"
    result = run_main("train.py", "--config", str(config_path), "--set", "train.report_to=tensorboard",
                      "--set", f"train.output_dir={out}", "--set", "train.epochs=1",
                      "--set", "eval.num_clips=1", "--set", "eval.num_crops=1")
    assert result.returncode == 0, result.stderr[-2000:]
    (events,) = {path.parent for path in (out / "runs").rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events)).Reload()
    losses = accumulator.Scalars("train/loss")
    assert len(losses) == 4 and all(event.value > 0 for event in losses)  # logging_steps 1, 4 steps
    assert "eval/accuracy" in accumulator.Tags()["scalars"]


def test_a_logger_whose_package_is_missing_is_one_line(trained):
    config_path, _, _ = trained
    line = one_line_error(run_main("train.py", "--config", str(config_path), "--set", "train.report_to=wandb"))
    assert "train.report_to: wandb needs the package wandb" in line and "pip install wandb" in line
    line = one_line_error(run_main("train.py", "--config", str(config_path), "--set", "train.report_to=tensorbord"))
    assert "unknown logger 'tensorbord'" in line


def test_infer_decodes_in_worker_processes_only_where_the_model_does_not_share_the_cores():
    """predict_manual's default (bench/predict.py measured workers slower on 2 CPU cores): the main process
    decodes on the CPU and for one video; on a GPU, data.num_workers processes, never more than videos."""
    from video_classifier.core.config import Config
    from video_classifier.serve.inference import decode_workers

    config = Config()
    config.data.num_workers = 3
    assert decode_workers(10, config, "cpu") == 0
    assert decode_workers(1, config, "cuda:0") == 0
    assert decode_workers(10, config, "cuda:0") == 3 and decode_workers(2, config, "cuda") == 2
