import re

import pytest
from conftest import REPO, write_config

import prepare_data
import train
from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.data.sources import source_of


@pytest.mark.parametrize("name", ["config.yaml", "configs/demo.yaml", "configs/videomae-base-finetune-recipe.yaml"])
def test_shipped_configs_load(name):
    config = load_config(REPO / name)
    assert config.train.batch_size > 0


def test_real_recipe_is_the_guides():
    config = load_config(REPO / "config.yaml")
    assert config.model.checkpoint == "MCG-NJU/videomae-base"
    assert (config.data.source, config.data.hub_repo, config.data.hub_filename) == (
        "hub", "sayakpaul/ucf101-subset", "UCF101_subset.tar.gz")
    assert (config.data.sample_rate, config.train.batch_size, config.train.learning_rate) == (4, 8, 5e-5)
    assert (config.train.warmup, config.train.epochs) == (0.1, 4)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"lr": 1}}, "unknown config key train.lr: allowed keys here are output_dir"),
        ({"trian": {}}, "unknown config key trian: allowed keys here are data, model, train, eval, infer"),
        ({"train": {"batch_size": "8"}}, "train.batch_size = '8': expected int, got str"),
        ({"train": {"batch_size": 0}}, "train.batch_size = 0: must be > 0"),
        ({"train": {"epochs": True}}, "train.epochs = True: expected int"),
        ({"data": {"source": "ftp"}}, "data.source = 'ftp': must be one of 'hub' | 'archive' | 'synthetic'"),
        ({"data": {"synthetic": {"width": 65}}}, "data.synthetic.width = 65: must be an even number"),
        ({"train": {"min_scale": 0.5}}, "train.min_scale = 0.5: must be >= 1"),
        ({"model": {"tiny_init": {"image_size": 60}}}, "model.tiny_init.image_size must be a multiple of patch_size"),
        ({"infer": 3}, "infer: expected a section"),
        ({"eval": {"num_crops": 0}}, "eval.num_crops = 0: must be > 0"),
        ({"data": {"decoder": "ffmpeg"}}, "data.decoder = 'ffmpeg': must be one of 'auto' | 'torchcodec' | 'pyav'"),
        ({"data": {"backend": "pytorchvideo", "decoder": "torchcodec"}}, "decodes with PyAV only"),
    ],
)
def test_bad_values_name_the_key(tmp_path, data, message):
    with pytest.raises(UserError) as err:
        load_config(write_config(tmp_path / "c.yaml", data))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"source": "archive"}, "data.archive is empty: source 'archive' needs the path of a .tar.gz"),
        ({"source": "folder"}, "data.videos is empty: source 'folder' needs a folder"),
        ({"source": "hf_dataset"}, "data.hf_dataset is not set: source 'hf_dataset' needs data.hf_dataset.path"),
        ({"source": "shards", "backend": "pytorchvideo"}, "a stream (data.source: shards), which trains through the "
                                                          "native backend; set backend: native"),
        ({"source": "hf_dataset", "backend": "pytorchvideo", "hf_dataset": {"path": "a/b", "streaming": True,
                                                                             "splits": {"train": "train"}}},
         "a stream (data.hf_dataset.streaming), which trains through the native backend"),
    ],
)
def test_each_source_refuses_its_own_missing_settings_before_anything_runs(tmp_path, capsys, data, message):
    """The source checks its block (data/sources/): prepare_data.py and train.py stop with its one line
    before reading or writing anything."""
    path = write_config(tmp_path / "c.yaml", {"data": {"root": str(tmp_path / "data"), **data},
                                             "train": {"output_dir": str(tmp_path / "run")}})
    with pytest.raises(UserError, match=re.escape(message)):
        source_of(load_config(path).data)
    for script in (prepare_data, train):
        with pytest.raises(SystemExit):
            script.main(["--config", str(path)])
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # nothing prepared, no run folder


def test_defaults_and_types(tmp_path):
    config = load_config(write_config(tmp_path / "c.yaml", {"train": {"learning_rate": "5e-5", "warmup": 2}}))
    assert config.train.learning_rate == 5e-5 and isinstance(config.train.warmup, float)
    assert config.model.tiny_init is None


def test_overrides(tmp_path):
    path = write_config(tmp_path / "c.yaml", {})
    config = load_config(path, ["train.epochs=2", "data.synthetic.seed=7", "model.checkpoint=some/model"])
    assert (config.train.epochs, config.data.synthetic.seed, config.model.checkpoint) == (2, 7, "some/model")
    with pytest.raises(UserError, match="unknown config key train.epoch:"):
        load_config(path, ["train.epoch=2"])
    with pytest.raises(UserError, match="expected section.key=value"):
        load_config(path, ["train.epochs"])


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(UserError, match="config file .*nope.yaml not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [1,\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        load_config(tmp_path / "bad.yaml")
