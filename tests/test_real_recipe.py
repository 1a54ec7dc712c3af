"""The real recipe (config.yaml: MCG-NJU/videomae-base on sayakpaul/ucf101-subset), rehearsed offline.

`prepare_data.py` and `train.py` run on the repo's own config.yaml, changed only in steps, batch,
views and folders, against a local stand-in for the Hub (`fake_hub`, through `HF_ENDPOINT`) that
serves both repos the way the Hub does:

- dataset `sayakpaul/ucf101-subset`, file `UCF101_subset.tar.gz`, in the real archive's layout
  (`UCF101_subset/{train,val,test}/<Class>/v_<Class>_gNN_cMM.avi`, the subset's 10 classes), with
  tiny generated videos: 64x48, 2.64 s at 25 fps, so one 16 x 4-frame clip (2.56 s) covers a video;
- model `MCG-NJU/videomae-base`: the checkpoint's config.json and preprocessor_config.json as
  published, and a model.safetensors of its architecture (VideoMAEForPreTraining, ViT-B/16, 16
  frames, 224 px, with the pretraining decoder) under its key names, with random weights.

ViT-B costs about 2.6 s per clip forward on a 2-core CPU: 1 step at batch 2, 1x1 views and one val and
one test video keep the run near a minute.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import REPO, assert_metrics_add_up, run_script
from fake_hub import FakeHub, serve_hub
from safetensors.torch import load_file, save_file

from video_classifier.core.config import SyntheticConfig
from video_classifier.data import synthetic

DATASET_REPO, ARCHIVE = "sayakpaul/ucf101-subset", "UCF101_subset.tar.gz"
MODEL_REPO = "MCG-NJU/videomae-base"
# the subset's classes, as the Hugging Face video classification guide lists them
CLASSES = [
    "ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling", "BalanceBeam",
    "BandMarching", "BaseballPitch", "Basketball", "BasketballDunk", "BenchPress",
]
# (split, class, group): one train video per class; val and test hold a few, from other groups
VIDEOS = (
    [("train", name, 8 + i) for i, name in enumerate(CLASSES)]
    + [("val", "BandMarching", 5)]
    + [("test", "Archery", 1)]
)
VIDEO = SyntheticConfig(width=64, height=48, fps=25, seconds=2.64, seed=0)  # 66 frames: one 2.56 s clip

# MCG-NJU/videomae-base's config.json as published (converted with transformers 4.22): pretraining
# architecture, first-token pooling (use_mean_pooling false), the 4.x name qkv_bias
MODEL_CONFIG = {
    "architectures": ["VideoMAEForPreTraining"],
    "attention_probs_dropout_prob": 0.0,
    "decoder_hidden_size": 384,
    "decoder_intermediate_size": 1536,
    "decoder_num_attention_heads": 6,
    "decoder_num_hidden_layers": 4,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "hidden_size": 768,
    "image_size": 224,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "model_type": "videomae",
    "norm_pix_loss": True,
    "num_attention_heads": 12,
    "num_channels": 3,
    "num_frames": 16,
    "num_hidden_layers": 12,
    "patch_size": 16,
    "qkv_bias": True,
    "torch_dtype": "float32",
    "transformers_version": "4.22.0.dev0",
    "tubelet_size": 2,
    "use_mean_pooling": False,
}
# its preprocessor_config.json: the legacy feature-extractor format (size an int), ImageNet mean/std;
# the repo has no video_preprocessor_config.json
PREPROCESSOR_CONFIG = {
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "VideoMAEFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 2,
    "size": 224,
}
Q_BIAS = "videomae.encoder.layer.0.attention.attention.q_bias"


@pytest.fixture(scope="module")
def videomae_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with the files of MCG-NJU/videomae-base; random weights (377 MB, like the real ones)."""
    from transformers import VideoMAEConfig, VideoMAEForPreTraining

    folder = tmp_path_factory.mktemp("videomae-base")
    torch.manual_seed(0)
    model = VideoMAEForPreTraining(VideoMAEConfig(**MODEL_CONFIG))
    # The checkpoint keeps transformers 4.x's names for the query/value biases (q_bias, v_bias), which
    # 5.x renames on load; random values (init leaves them zero) so the test can follow them.
    state = {}
    for name, tensor in model.state_dict().items():
        name = name.replace("attention.attention.query.bias", "attention.attention.q_bias")
        name = name.replace("attention.attention.value.bias", "attention.attention.v_bias")
        state[name] = torch.randn_like(tensor) * 0.1 if name.endswith(("q_bias", "v_bias")) else tensor.contiguous()
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(MODEL_CONFIG, indent=2) + "\n")
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2) + "\n")
    yield folder
    shutil.rmtree(folder)  # pytest keeps the last 3 runs' temporary folders


@pytest.fixture(scope="module")
def ucf101_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """UCF101_subset.tar.gz in the real archive's layout, with tiny generated videos."""
    root = tmp_path_factory.mktemp("ucf101-subset")
    motions = sorted(synthetic.MOTIONS)
    for i, (split, name, group) in enumerate(VIDEOS):
        # the generator's pans stand in for the actions: any motion will do here
        spec = synthetic.VideoSpec(split, motions[i % len(motions)], group, 1)
        path = root / "UCF101_subset" / split / name / f"v_{name}_g{group:02d}_c01.avi"
        synthetic.write_video(synthetic.render(spec, VIDEO), path, VIDEO.fps, VIDEO.bits_per_pixel)
    archive = root / ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "UCF101_subset", arcname="UCF101_subset")
    return archive


@pytest.fixture
def hub(videomae_base: Path, ucf101_subset: Path) -> Iterator[FakeHub]:
    files = {("dataset", DATASET_REPO, ARCHIVE): ucf101_subset}
    files.update({("model", MODEL_REPO, path.name): path for path in videomae_base.iterdir()})
    with serve_hub(files) as server:
        yield server


def _downloaded(hub: FakeHub, repo_path: str, filename: str) -> bool:
    """Whether the file's bytes were fetched, at any revision."""
    pattern = re.compile(rf"/{re.escape(repo_path)}/resolve/[^/]+/{re.escape(filename)}")
    return any(method == "GET" and pattern.fullmatch(path) for method, path in hub.requests)


@pytest.mark.slow  # about 75 s: ViT-B on 2 CPU cores
def test_real_recipe_through_local_hub(hub: FakeHub, videomae_base: Path, tmp_path: Path) -> None:
    data, out = tmp_path / "ucf101_subset", tmp_path / "run"
    overrides = [
        "--set", f"data.root={data}", "--set", "data.num_workers=0",
        "--set", f"train.output_dir={out}", "--set", "train.max_steps=1", "--set", "train.batch_size=2",
        "--set", "eval.num_clips=1", "--set", "eval.num_crops=1",
    ]
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_OFFLINE": "0"}
    config = str(REPO / "config.yaml")

    prepared = run_script("prepare_data.py", "--config", config, *overrides, cwd=tmp_path, env=env)
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    labels = json.loads((data / "labels.json").read_text())
    assert list(labels["label2id"]) == CLASSES
    assert len((data / "manifest.csv").read_text().splitlines()) == 1 + len(VIDEOS)

    trained = run_script("train.py", "--config", config, *overrides, cwd=tmp_path, env=env)
    assert trained.returncode == 0, trained.stdout + trained.stderr[-5000:]
    model_config = json.loads((out / "config.json").read_text())
    assert model_config["architectures"] == ["VideoMAEForVideoClassification"]
    assert [model_config["id2label"][str(i)] for i in range(len(CLASSES))] == CLASSES
    assert (model_config["hidden_size"], model_config["num_frames"], model_config["image_size"]) == (768, 16, 224)
    # the pretraining checkpoint's first-token pooling is replaced by the paper's mean pooling
    assert model_config["use_mean_pooling"] is True and "fc_norm.weight" in load_file(out / "model.safetensors")
    assert "fine-tuning a VideoMAE pretraining checkpoint with mean pooling" in trained.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("val", "test"):
        assert_metrics_add_up(metrics[split])
        assert sorted(metrics[split]["per_class"]) == sorted(CLASSES)
    # The checkpoint's q_bias came through the rename to query.bias, training (a step at a learning
    # rate of 5e-5 moves a weight by about 1e-4) and the reload of the best checkpoint.
    trained_weights = load_file(out / "model.safetensors")
    served = load_file(videomae_base / "model.safetensors")[Q_BIAS]
    kept = trained_weights.get(Q_BIAS, trained_weights.get(Q_BIAS.replace("q_bias", "query.bias")))
    assert kept is not None and torch.allclose(kept, served, atol=1e-3)

    assert _downloaded(hub, f"datasets/{DATASET_REPO}", ARCHIVE)
    for filename in ("config.json", "preprocessor_config.json", "model.safetensors"):
        assert _downloaded(hub, MODEL_REPO, filename), filename
    # nothing was asked of an endpoint the stand-in does not answer as the Hub does, but core/hub.py's probe
    # (HEAD /, once per process: prepare_data.py's and train.py's)
    probes = [(method, path) for method, path in hub.requests if path == "/"]
    assert probes and all(method == "HEAD" for method, _ in probes) and len(probes) <= 2
    assert all(re.fullmatch(r"/api/(models|datasets)/.+|/.+/resolve/.+", path) for _, path in hub.requests
               if path != "/")
    # passed: drop the 1.7 GB of weights (Hub cache, checkpoint with optimizer state, model) that
    # pytest would keep for its last 3 runs
    shutil.rmtree(tmp_path / "hf_home")
    shutil.rmtree(out)
