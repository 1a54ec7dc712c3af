"""Predict labels for videos with a trained checkpoint (folder or Hub id).

`manual` mode scores each video from the same views as evaluation
(`num_clips` clips spread over it x `num_crops` crops, softmax averaged) through
the same function, so a video gets exactly the scores evaluation gave it.
`pipeline` mode hands the file to `transformers.pipeline("video-classification")`,
which samples `num_frames` frames evenly over the whole video and takes one
centre crop: a different view, so its scores differ (see PIPELINE_NOTE).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transformers.utils import logging as transformers_logging

from ..core.config import Config
from ..core.cpus import fit_threads
from ..core.errors import DecodeError, UserError, first_line
from ..data.datasets import ViewDataset
from ..data.decoding import announce, choose_decoder, torchcodec_problem
from ..data.manifest import VideoRecord, probe_video
from ..data.user_videos import VIDEO_SUFFIXES
from ..engine.scoring import video_scores
from ..model.compiling import compile_for_inference, refuse_compile
from ..model.model_spec import ModelSpec
from ..model.modeling import load_trained
from ..model.precision import with_precision
from ..model.unknown import UNKNOWN, with_unknown
from ..model.zero_shot import load_zero_shot
from .onnx_export import load_onnx
from .openvino_backend import load_openvino
from .timeline import SWITCH_COST, timeline, write_timeline

PIPELINE_NOTE = (
    "note: --mode pipeline samples num_frames frames evenly over the whole video (transformers' video "
    "processor) and takes one centre crop; evaluation and --mode manual average clips of consecutive "
    "frames at the training stride, so the scores differ"
)


@dataclass
class Prediction:
    video: str
    views: str  # what was averaged, e.g. "5 clips x 3 crops"
    labels: list[str]
    scores: list[float]
    # no class reached infer.unknown's threshold (this number): the answer is "unknown", labels the best guesses
    unknown: float | None = None


def find_videos(paths: list[str]) -> list[Path]:
    """The given files, and the videos found under the given folders (sorted)."""
    videos = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise UserError(f"folder {path} holds no videos ({', '.join(sorted(VIDEO_SUFFIXES))})")
            videos += found
        elif path.is_file():
            videos.append(path)
        else:
            raise UserError(f"video {path} not found: check the path")
    return videos


def video_records(videos: list[Path]) -> list[VideoRecord]:
    return [VideoRecord(str(v), "", "", "", *probe_video(v)) for v in videos]


def decode_workers(videos: int, config: Config, device: str) -> int:
    """Decoding processes for scoring `videos` videos on `device`: on a GPU, where the model step is short
    and decoding is most of the time, data.num_workers (as evaluation has), so the next videos decode while
    the model runs; on the CPU none, where the model shares the cores with them: bench/predict.py measured
    one process 0.93x and two 0.68x the main process alone (64 demo videos, 2-core AMD EPYC); and none for
    one video (a process costs more to start than its decode)."""
    return 0 if videos < 2 or device == "cpu" else min(config.data.workers(), videos)


def predict_manual(model: Any, spec: ModelSpec, videos: list[Path], config: Config, top_k: int,
                   workers: int | None = None) -> list[Prediction]:
    """Each video scored from config.eval's views, exactly as evaluation scores it; `workers` decoding
    processes (None: decode_workers)."""
    decoding = choose_decoder(config.data.decoder)
    announce(decoding)
    num_clips, num_crops = config.eval.num_clips, config.eval.num_crops
    views = ViewDataset(video_records(videos), "", {}, spec.preprocess, num_clips, num_crops, decoding.decode)
    workers = decode_workers(len(videos), config, str(getattr(model, "device", "cpu"))) if workers is None else workers
    try:
        scores = video_scores(model, spec, views, config.eval.batch_size, workers)
    except DecodeError as err:
        raise UserError(f"{first_line(err)}; check that the file plays") from None
    described = f"{num_clips} clips x {num_crops} crops"
    return [Prediction(str(v), described, labels, values, answered_unknown(spec, values))
            for v, (labels, values) in zip(videos, spec.task.shown(scores, spec.id2label, top_k))]


def answered_unknown(spec: ModelSpec, shown: list[float]) -> float | None:
    """The threshold, where the best of a prediction's `shown` scores is below it (the answer is unknown)."""
    if spec.unknown is None or (shown and shown[0] >= spec.unknown):
        return None
    return spec.unknown


def predict_pipeline(model_ref: str, videos: list[Path], top_k: int) -> list[Prediction]:
    from transformers import pipeline

    problem = torchcodec_problem()
    if problem is not None:  # transformers' pipeline decodes videos with torchcodec only
        raise UserError(f"--mode pipeline needs torchcodec, which does not load here ({problem}): "
                        "use --mode manual (same views as evaluation, decodes with PyAV), or install FFmpeg's "
                        "shared libraries (Debian: apt-get install ffmpeg)")
    print(PIPELINE_NOTE, file=sys.stderr)
    video_records(videos)  # a file that does not open stops here, with its name
    try:
        classifier = pipeline("video-classification", model=model_ref)
    except (ImportError, RuntimeError, OSError) as err:
        raise UserError(f"the video-classification pipeline did not load ({err}); use --mode manual") from None
    predictions = []
    for video in videos:
        try:
            result = classifier(str(video), top_k=top_k)
        except RuntimeError as err:
            first = first_line(err)
            raise UserError(f"the pipeline could not decode {video} ({first}); use --mode manual") from None
        except TypeError as err:  # its postprocess reads logits as (1, classes); VideoPrism's are (1, 1, classes)
            raise UserError(f"transformers' video-classification pipeline cannot read the outputs of "
                            f"{classifier.model.config.model_type} ({err}); use --mode manual") from None
        predictions.append(Prediction(str(video), "pipeline: 1 view", [r["label"] for r in result],
                                      [r["score"] for r in result]))
    return predictions


def load_backend(model_ref: str, config: Config, backend: str = "torch",
                 zero_shot: dict[str, int] | None = None) -> tuple[Any, ModelSpec]:
    """The trained model and its description: torch (a trained folder or Hub id) answering in
    infer.precision, onnxruntime (a folder export.py wrote), or OpenVINO (the same, in infer.precision).
    `zero_shot` (--zero-shot): the classes an X-CLIP checkpoint scores the videos against, on torch. torch's
    threads are fitted to the cores this process may use first (core/cpus.py), said once where they change."""
    fitted = fit_threads()
    if fitted:
        print(fitted, file=sys.stderr)
    if zero_shot is not None:
        if backend != "torch":
            raise UserError(f"--zero-shot runs X-CLIP on torch (export.py writes fine-tuned models only): drop "
                            f"--backend {backend}")
        model, spec = load_zero_shot(model_ref, zero_shot, config)
        return compile_for_inference(model, config.infer.compile), with_precision(model, spec, config.infer.precision)
    if backend != "torch":
        refuse_compile(config.infer.compile, backend)
    if backend == "onnxruntime":
        if config.infer.precision not in ("auto", "fp32"):
            raise UserError(f"infer.precision: {config.infer.precision} runs on the torch backend; the onnxruntime "
                            "backend runs the export as written (fp32): set infer.precision: auto, or --backend torch")
        return load_onnx(model_ref, config.data.sample_rate)
    if backend == "openvino":
        return load_openvino(model_ref, config.data.sample_rate, config.infer.precision)
    model, spec = load_trained(model_ref, config.data.sample_rate)
    return compile_for_inference(model, config.infer.compile), with_precision(model, spec, config.infer.precision)


def load_model(model_ref: str, config: Config, backend: str = "torch",
               zero_shot: dict[str, int] | None = None) -> tuple[Any, ModelSpec]:
    """load_backend's model, its spec answering unknown below infer.unknown's threshold (model/unknown.py)."""
    model, spec = load_backend(model_ref, config, backend, zero_shot)
    return model, with_unknown(model, spec, config.infer.unknown)


def predict(model_ref: str, paths: list[str], config: Config, top_k: int, mode: str,
            backend: str = "torch", zero_shot: dict[str, int] | None = None) -> list[Prediction]:
    videos = find_videos(paths)
    transformers_logging.disable_progress_bar()  # the weight-loading bar would only clutter the table
    if mode == "pipeline":
        if backend != "torch":
            raise UserError("--mode pipeline runs transformers' pipeline on torch: use --backend torch")
        if zero_shot is not None:
            raise UserError("--mode pipeline runs transformers' video-classification pipeline, which has no "
                            "zero-shot form: use --mode manual with --zero-shot")
        return predict_pipeline(model_ref, videos, top_k)
    model, spec = load_model(model_ref, config, backend, zero_shot)
    return predict_manual(model, spec, videos, config, top_k)


def predict_timeline(model_ref: str, paths: list[str], config: Config, top_k: int, stride: float | None,
                     min_segment: float | None, out: Path, backend: str = "torch", switch_cost: float = SWITCH_COST,
                     zero_shot: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Each video's timeline (timeline.py), written into `out`; returns its segments and files. `min_segment`
    None: the timeline's default (two windows)."""
    videos = find_videos(paths)
    transformers_logging.disable_progress_bar()
    model, spec = load_model(model_ref, config, backend, zero_shot)
    decoding = choose_decoder(config.data.decoder)
    announce(decoding)
    results = []
    for video in videos:
        try:
            result = timeline(model, spec, video, decoding, stride, config.eval.batch_size)
        except DecodeError as err:
            raise UserError(f"{first_line(err)}; check that the file plays") from None
        shortest = result.default_min_segment() if min_segment is None else min_segment
        segments = result.segments(shortest, switch_cost)
        files = write_timeline(result, segments, out, top_k, shortest, switch_cost)
        results.append({"video": str(video), "window": result.window, "stride": result.stride,
                        "min_segment": shortest,
                        "windows": len(result.starts), "segments": [asdict(s) for s in segments],
                        "files": {k: str(v) for k, v in files.items()}})
    return results


def predict_explain(model_ref: str, paths: list[str], config: Config, method: str, label: str | None, out: Path,
                    backend: str = "torch") -> list[dict[str, Any]]:
    """Each video's map of `label` (default: its top class) by `method` (explain.py), written into `out`
    (explain_media.py); returns the label, its window scores and the files. On torch in fp32: Grad-CAM
    needs the model's gradients."""
    from .explain_media import explained_files

    if backend != "torch":
        raise UserError(f"--explain runs the model on torch (Grad-CAM needs its gradients): drop --backend {backend}")
    videos = find_videos(paths)
    transformers_logging.disable_progress_bar()
    model, spec = load_trained(model_ref, config.data.sample_rate)
    decoding = choose_decoder(config.data.decoder)
    announce(decoding)
    results = []
    for video in videos:
        try:
            found, files = explained_files(model, spec, video, decoding, method, label, out, config.eval.batch_size)
        except DecodeError as err:
            raise UserError(f"{first_line(err)}; check that the file plays") from None
        results.append({"video": str(video), "label": found.label, "method": found.method,
                        "scores": [round(s, 4) for s in found.scores], "files": {k: str(v) for k, v in files.items()}})
    return results


def format_explanations(results: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['video']}: {r['label']} ({r['method']}), window scores "
                     f"{', '.join(f'{s:.2f}' for s in r['scores'])}; {r['files']['mp4']}" for r in results)


def format_timelines(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r['video']}  ({r['windows']} windows of {r['window']:.2f} s every {r['stride']:.2f} s; "
                     f"{r['files']['png']})")
        lines += [f"  {s['start']:9.2f} - {s['end']:9.2f} s  {s['label']}  ({s['score']:.3f})" for s in r["segments"]]
    return "\n".join(lines)


def format_table(predictions: list[Prediction]) -> str:
    lines = []
    for p in predictions:
        lines.append(f"{p.video}  ({p.views})")
        if not p.labels:  # multi-label: no class reached its threshold
            lines.append("  (no label reaches its threshold)")
            continue
        if p.unknown is not None:
            lines.append(f"  {UNKNOWN}  (no class reaches {p.unknown:.3f}, infer.unknown's threshold; best guesses:)")
        width = max(len(label) for label in p.labels)
        lines += [f"  {label:<{width}}  {score:.4f}" for label, score in zip(p.labels, p.scores)]
    return "\n".join(lines)
