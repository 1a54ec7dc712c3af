"""Predict labels for videos with a trained checkpoint (folder or Hub id).

`manual` mode decodes and transforms clips exactly as evaluation does (same
module, same clip sampler) and averages the softmax over a video's clips.
`pipeline` mode hands the file to `transformers.pipeline("video-classification")`,
which samples `num_frames` evenly over the whole video: its scores differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging as transformers_logging

from .config import DataConfig, TrainConfig
from .errors import UserError
from .modeling import load_for_inference, load_processor
from .data import ClipDataset
from .decoding import Decoder, choose_decoder, decode_pyav
from .prepare import VideoRecord, probe_video
from .preprocessing import PreprocessSpec, spec_from_checkpoint


@dataclass
class Prediction:
    video: str
    clips: int  # how many clips were averaged (0 in pipeline mode: the pipeline decides)
    labels: list[str]
    scores: list[float]


def inference_spec(processor: Any, model_config: Any, sample_rate: int | None = None) -> PreprocessSpec:
    """The evaluation preprocessing of a trained model. Its frame stride is read from model.config
    (train.py stores it there); `sample_rate` is the fallback for models trained elsewhere."""
    stride = getattr(model_config, "sample_rate", None) or sample_rate
    if stride is None:
        raise UserError("the model's config.json has no sample_rate: pass --set data.sample_rate=N")
    return spec_from_checkpoint(processor, model_config, DataConfig(sample_rate=int(stride)), TrainConfig())


def check_videos(paths: list[str]) -> list[Path]:
    videos = [Path(p) for p in paths]
    for video in videos:
        if not video.is_file():
            raise UserError(f"video {video} not found: check the path")
    return videos


def eval_clips(video: Path, spec: PreprocessSpec, decoder: Decoder = decode_pyav) -> torch.Tensor:
    """Every uniform clip of one video, exactly as evaluation sees them: (N, T, C, H, W)."""
    frames, fps, duration = probe_video(video)
    record = VideoRecord(str(video), label="", split="", group="", frames=frames, fps=fps, duration=duration)
    dataset = ClipDataset([record], "", {}, spec, train=False, decoder=decoder)
    try:
        return torch.stack([dataset[i]["video"] for i in range(len(dataset))])
    except RuntimeError as err:
        raise UserError(f"{err}; check that the file plays") from None


@torch.inference_mode()
def predict_manual(model: Any, spec: PreprocessSpec, videos: list[Path], top_k: int,
                   decoder: Decoder = decode_pyav) -> list[Prediction]:
    id2label = model.config.id2label
    k = min(top_k, len(id2label))
    predictions = []
    for video in videos:
        clips = eval_clips(video, spec, decoder)
        probs = model(pixel_values=clips.to(model.device, model.dtype)).logits.softmax(-1).mean(0)
        scores, ids = probs.topk(k)
        predictions.append(Prediction(str(video), len(clips), [id2label[i] for i in ids.tolist()], scores.tolist()))
    return predictions


def predict_pipeline(model_ref: str, videos: list[Path], top_k: int) -> list[Prediction]:
    from transformers import pipeline

    try:
        classifier = pipeline("video-classification", model=model_ref)
    except (ImportError, RuntimeError, OSError) as err:
        raise UserError(f"the video-classification pipeline did not load ({err}); use --mode manual") from None
    predictions = []
    for video in videos:
        try:
            result = classifier(str(video), top_k=top_k)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise UserError(f"the pipeline could not decode {video} ({first}); use --mode manual") from None
        predictions.append(Prediction(str(video), 0, [r["label"] for r in result], [r["score"] for r in result]))
    return predictions


def predict(model_ref: str, paths: list[str], data: DataConfig, top_k: int, mode: str) -> list[Prediction]:
    videos = check_videos(paths)
    transformers_logging.disable_progress_bar()  # the weight-loading bar would only clutter the table
    if mode == "pipeline":
        return predict_pipeline(model_ref, videos, top_k)
    model = load_for_inference(model_ref)
    processor = load_processor(model_ref)
    _, decoder = choose_decoder(data.decoder)
    return predict_manual(model, inference_spec(processor, model.config, data.sample_rate), videos, top_k, decoder)


def format_table(predictions: list[Prediction]) -> str:
    lines = []
    for p in predictions:
        clips = f"  ({p.clips} clips averaged)" if p.clips else ""
        lines.append(f"{p.video}{clips}")
        width = max(len(label) for label in p.labels)
        lines += [f"  {label:<{width}}  {score:.4f}" for label, score in zip(p.labels, p.scores)]
    return "\n".join(lines)
