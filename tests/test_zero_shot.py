"""Zero-shot scoring with X-CLIP (infer.py / eval.py / app.py --zero-shot), offline: a tiny random X-CLIP
saved with its processor (a CLIP tokenizer built from a vocabulary written here, VideoMAE's image
processor, as microsoft/xclip-base-patch32 has) and loaded back through from_pretrained. Its numbers are
near chance, so nothing here asserts accuracy: the checks are that our path gives the logits plain
transformers gives when called as X-CLIP's model card calls it, and that the scripts write what a
fine-tuned model's runs write."""

from __future__ import annotations

import json
import re
import shutil
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import transformers
from conftest import assert_metrics_add_up, run_main, tiny_config_dict, write_config

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.data.datasets import ViewDataset
from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import spread_clip_starts
from video_classifier.model.zero_shot import label_words, load_zero_shot, prompts, zero_shot_classes

NUM_FRAMES = 4  # X-CLIP-B/32 takes 8; a smaller number shows it is read from vision_config, not assumed


@pytest.fixture(scope="module")
def xclip_folder(tmp_path_factory) -> Path:
    """A tiny random X-CLIP and its processor, saved as a checkpoint folder. The vocabulary is one token
    per character (no merges), the special tokens last, as in CLIP's (X-CLIP's legacy text pooling reads
    the highest id, <|endoftext|>). The processor resizes the short side to 48, the tiny videos' height
    (64x48), and crops 32x32: no resampling, so plain transformers sees the very pixels we do."""
    folder = tmp_path_factory.mktemp("xclip")
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    image_processor = transformers.VideoMAEImageProcessor(
        size={"shortest_edge": 48}, crop_size={"height": 32, "width": 32},
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    config = transformers.XCLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 40},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8, "num_frames": NUM_FRAMES, "mit_hidden_size": 16,
                       "mit_intermediate_size": 32, "mit_num_attention_heads": 2},
        projection_dim=16, prompt_num_attention_heads=2)
    torch.manual_seed(0)
    transformers.XCLIPModel(config).save_pretrained(folder)
    transformers.XCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def config_path(tiny_workspace, xclip_folder, tmp_path_factory) -> Path:
    """The tiny config, its data the prepared tiny set, its checkpoint the X-CLIP folder."""
    root = tmp_path_factory.mktemp("zero-shot")
    data = tiny_config_dict(root)
    data["data"]["root"] = str(tiny_workspace / "data")
    data["model"] = {"checkpoint": str(xclip_folder)}
    return write_config(root / "config.yaml", data)


@cache
def plain_xclip(folder: Path) -> tuple[transformers.XCLIPProcessor, transformers.XCLIPModel]:
    return transformers.XCLIPProcessor.from_pretrained(folder), transformers.XCLIPModel.from_pretrained(folder).eval()


def plain_logits(folder: Path, texts: list[str], frames: np.ndarray) -> torch.Tensor:
    """(1, classes): X-CLIP as its model card calls it, on (T, H, W, 3) uint8 frames."""
    processor, model = plain_xclip(folder)
    inputs = processor(text=texts, videos=list(frames), return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**inputs).logits_per_video


def centre_clip_frames(path: Path, record, num_frames: int, sample_rate: int) -> np.ndarray:
    """The frames of a video's centre clip, (T, H, W, 3) uint8, every frame decoded by PyAV and picked by
    position (our sampler says which: choosing frames is not what this file tests)."""
    from video_classifier.data.preprocessing import PreprocessSpec

    spec = PreprocessSpec(num_frames, sample_rate, 48, (32, 32), (0, 0, 0), (1, 1, 1))
    length = spec.clip_span(record.duration, record.fps)
    (start,) = spread_clip_starts(record.duration, length, 1)
    indices = spec.frame_indices(start, start + length, record.fps, record.frames)
    with av.open(str(path)) as video:
        every = [frame.to_ndarray(format="rgb24") for frame in video.decode(video=0)]
    return np.stack([every[i] for i in indices])


def reference_prompts(class_names: list[str]) -> list[str]:
    """The prompts written out independently: a space before each capital, lower case."""
    return ["a video of " + re.sub(r"(?<!^)([A-Z])", r" \1", name).lower() for name in class_names]


def test_class_names_become_words():
    assert label_words("ApplyEyeMakeup") == "apply eye makeup"
    assert label_words("PanUpRight") == "pan up right"
    assert label_words("jumping_jack") == "jumping jack"
    assert label_words("air drumming") == "air drumming"  # Kinetics' names are words already
    assert label_words("YoYo") == "yo yo" and label_words("TVShow") == "tv show"
    assert label_words("Pull-Ups") == "pull ups"
    assert prompts(["BlowDryHair", "Knitting"], "someone {label}.") == ["someone blow dry hair.", "someone knitting."]


@pytest.mark.parametrize("prompt, problem", [
    ("a video", "must hold {label}"),
    ("a video of {name}", "must hold {label}"),
    ("{label} or {0}", "must hold {label}"),
    ("a video of {label", "expected '}'"),
])
def test_a_prompt_without_its_label_is_refused(tmp_path, prompt, problem):
    data = tiny_config_dict(tmp_path)
    data["model"]["zero_shot_prompt"] = prompt
    with pytest.raises(UserError, match=re.escape(problem)) as err:
        load_config(write_config(tmp_path / "config.yaml", data))
    assert "model.zero_shot_prompt" in str(err.value)
    data["model"]["zero_shot_prompt"] = "people {label}, {{filmed}}"
    assert load_config(write_config(tmp_path / "config.yaml", data)).model.zero_shot_prompt.endswith("{{filmed}}")


def test_our_logits_are_plain_transformers_logits(config_path, xclip_folder):
    """One clip of each of three test videos, one crop: our views, ModelSpec.logits and the adapter give X-CLIP's
    logits_per_video for the same frames and the prompts, as its model card computes them."""
    config = load_config(config_path)
    label2id, records = load_prepared(config.data.root)
    model, spec = load_zero_shot(str(xclip_folder), label2id, config)
    assert spec.preprocess.num_frames == NUM_FRAMES and spec.preprocess.crop_size == (32, 32)
    assert spec.preprocess.mean == pytest.approx((0.485, 0.456, 0.406))  # the processor's, not CLIP's or 0.5
    assert spec.id2label == {i: label for label, i in label2id.items()} and spec.task.name == "single_label"
    test = [r for r in records if r.split == "test"][:3]
    views = ViewDataset(test, config.data.root, label2id, spec.preprocess, 1, 1, choose_decoder("pyav").decode)
    with torch.inference_mode():
        ours = spec.logits(model, torch.cat([views[i]["views"] for i in range(len(test))]))
    texts = reference_prompts(sorted(label2id, key=label2id.get))
    for row, record in zip(ours, test):
        frames = centre_clip_frames(Path(config.data.root) / record.path, record, NUM_FRAMES, config.data.sample_rate)
        theirs = plain_logits(xclip_folder, texts, frames)[0]
        assert torch.allclose(row, theirs, atol=1e-5, rtol=1e-5), (row, theirs)
    assert ours.std(-1).min() > 1e-3  # the classes' logits differ: prompts that all read alike would not


def test_a_checkpoint_laid_out_as_on_the_hub_loads_alike(config_path, xclip_folder, tmp_path):
    """microsoft/xclip-base-patch32 keeps its image processor in preprocessor_config.json (transformers 4.x's
    layout); transformers 5 saves a processor_config.json instead. Both load to the same description."""
    config = load_config(config_path)
    label2id, _ = load_prepared(config.data.root)
    hub_like = tmp_path / "xclip-hub-layout"
    shutil.copytree(xclip_folder, hub_like)
    (hub_like / "processor_config.json").unlink()
    plain_xclip(xclip_folder)[0].image_processor.save_pretrained(hub_like)
    assert load_zero_shot(str(hub_like), label2id, config)[1] == load_zero_shot(str(xclip_folder), label2id, config)[1]


def test_eval_zero_shot_writes_the_usual_metrics(config_path, xclip_folder, tmp_path):
    """eval.py --zero-shot on the tiny test split: the metrics a fine-tuned model's evaluation has (no stock
    pipeline: transformers has no zero-shot video pipeline), and per-video scores that are the softmax of
    plain transformers' logits (1 clip x 1 crop: one clip each)."""
    result = run_main("eval.py", "--config", str(config_path), "--zero-shot", "--clips", "1", "--crops", "1",
                      "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "zero-shot: 8 classes scored against 'a video of pan down'" in result.stderr
    split = json.loads((tmp_path / "eval_test_1x1.json").read_text())["test"]
    assert {"top1", "top5", "mean_class_accuracy", "per_class", "confusion_matrix", "centre_view_top1", "clip_top1",
            "clips", "views", "videos"} <= set(split)
    assert "pipeline_top1" not in split and split["views"] == "1 clips x 1 crops"
    assert_metrics_add_up(split)
    assert (tmp_path / "confusion_test_1x1.png").is_file()
    config = load_config(config_path)
    label2id, records = load_prepared(config.data.root)
    names = sorted(label2id, key=label2id.get)
    by_path = {r.path: r for r in records}
    scored = json.loads((tmp_path / "scores_test_1x1.json").read_text())
    assert len(scored) == split["videos"] == sum(r.split == "test" for r in records)
    for video in scored:
        record = by_path[video["video"]]
        frames = centre_clip_frames(Path(config.data.root) / record.path, record, NUM_FRAMES, config.data.sample_rate)
        theirs = plain_logits(xclip_folder, reference_prompts(names), frames)[0].softmax(-1)
        ours = torch.tensor([video["scores"][name] for name in names])
        assert torch.allclose(ours, theirs, atol=1e-5) and ours.argmax() == theirs.argmax()


def test_infer_zero_shot_with_names_given_and_a_timeline(config_path, xclip_folder, tiny_workspace, tmp_path):
    """infer.py --zero-shot --labels: the classes named on the command line, scored as plain transformers scores
    them; --timeline runs on the same model."""
    config = load_config(config_path)
    _, records = load_prepared(config.data.root)
    record = next(r for r in records if r.split == "test")
    video = Path(config.data.root) / record.path
    result = run_main("infer.py", "--config", str(config_path), "--zero-shot", "--labels", "Running,HulaHoop,sky",
                      "--clips", "1", "--crops", "1", "--top-k", "3", "--json", str(video))
    assert result.returncode == 0, result.stderr[-2000:]
    (prediction,) = json.loads(result.stdout)
    frames = centre_clip_frames(video, record, NUM_FRAMES, config.data.sample_rate)
    texts = ["a video of running", "a video of hula hoop", "a video of sky"]
    theirs = plain_logits(xclip_folder, texts, frames)[0].softmax(-1)
    ours = dict(zip(prediction["labels"], prediction["scores"]))
    assert ours == pytest.approx(dict(zip(["Running", "HulaHoop", "sky"], theirs.tolist())), abs=1e-5)
    result = run_main("infer.py", "--config", str(config_path), "--zero-shot", "--timeline", "--json",
                      "--out", str(tmp_path), str(video))
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = json.loads(result.stdout)
    assert line["windows"] > 1 and {s["label"] for s in line["segments"]} <= set(load_prepared(config.data.root)[0])


def test_the_page_answers_with_the_zero_shot_model(config_path, xclip_folder, tmp_path):
    from video_classifier.serve.web import answer, load_demo

    config = load_config(config_path)
    _, records = load_prepared(config.data.root)
    demo = load_demo(str(xclip_folder), config, zero_shot=zero_shot_classes(config.data.root))
    got = answer(demo, str(Path(config.data.root) / records[-1].path), tmp_path)
    assert got.status.startswith(Path(records[-1].path).name) and len(got.labels) == config.infer.top_k


def test_a_checkpoint_that_is_not_x_clip_is_one_line(config_path, tmp_path):
    """Exit 2 and one line naming the checkpoint's type."""
    from video_classifier.core.config import TinyModelConfig
    from video_classifier.model.model_spec import tiny_model

    backbone, processor = tiny_model(TinyModelConfig(image_size=32, hidden_size=32, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=64), 0)
    backbone.save_pretrained(tmp_path / "videomae")
    processor.save_pretrained(tmp_path / "videomae")
    result = run_main("eval.py", "--config", str(config_path), "--zero-shot", "--model", str(tmp_path / "videomae"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --zero-shot needs an X-CLIP checkpoint (model_type xclip, e.g. microsoft/xclip-base-patch32); "
        f"{tmp_path / 'videomae'} is videomae: pass --model with an X-CLIP Hub id or folder, or drop --zero-shot")


def test_what_zero_shot_cannot_use_is_one_line(config_path, tmp_path):
    config = load_config(config_path)
    video = str(Path(config.data.root) / load_prepared(config.data.root)[1][0].path)
    no_labels = tmp_path / "unlabelled"
    no_labels.mkdir()
    multi = tmp_path / "multi"
    multi.mkdir()
    (multi / "labels.json").write_text(json.dumps({"label2id": {"a": 0, "b": 1}, "task": "multi_label"}))
    cases = {
        "found none: no labels.json in": ["--set", f"data.root={no_labels}"],
        "picks one class per video": ["--set", f"data.root={multi}"],
        "--zero-shot runs X-CLIP on torch": ["--backend", "onnxruntime"],
        "has no zero-shot form": ["--mode", "pipeline"],
    }
    for message, args in cases.items():
        result = run_main("infer.py", "--config", str(config_path), "--zero-shot", *args, video)
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 2 and last.startswith("error: ") and message in last, (args, result.stderr)
    result = run_main("infer.py", "--config", str(config_path), "--labels", "a,b", video)
    assert result.returncode == 2 and "--labels goes with --zero-shot" in result.stderr
