"""The Hub files a command reads, looked at before the command imports torch and transformers.

Those imports take seconds on a small machine (4.7 s of infer.py's 5.8 s on 2 cores), so a machine that
cannot reach the Hub would hear core/hub.py's line only after them. Each command therefore names the Hub
file it reads first (a checkpoint's config.json, the dataset archive) and `check_hub_files` looks at once:

- where the Hub answers, or nothing is read from it (a local folder, a tiny checkpoint to be made), it
  returns, and the download's own failures (401, 404, ...) are said by `hub_call` as before;
- where HF_HUB_OFFLINE is set or the endpoint does not answer (hub.unreachable, asked once per process),
  each file must be in huggingface_hub's cache; one that is not ends the command with hub.py's line for
  that case, before the heavy imports.

The `Wanted` each kind of download is named by lives here too, so that the check and the download say
the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Config, DataConfig
from .errors import UserError
from .hub import Wanted, no_answer, offline, offline_line, unreachable


def checkpoint(ref: str, what: str = "model") -> Wanted:
    """A model checkpoint or its processor, set by model.checkpoint or --model."""
    return Wanted(what, ref, "model.checkpoint (or --model)", "model.checkpoint: FOLDER, or --model FOLDER",
                  revision_setting="model.revision")


def xclip_checkpoint(ref: str) -> Wanted:
    """The X-CLIP checkpoint of --zero-shot."""
    return Wanted("X-CLIP checkpoint", ref, "--model (or model.checkpoint)", "--model FOLDER",
                  revision_setting="model.revision")


def dataset_archive(data: DataConfig) -> Wanted:
    """data.source hub's archive."""
    return Wanted("dataset", data.hub_repo, "data.hub_repo", "data.source: archive with data.archive: FILE",
                  data.hub_filename, "data.hub_filename", "data.hub_revision")


@dataclass(frozen=True)
class HubFile:
    """One file a command reads from the Hub, and what its lines call it."""

    wanted: Wanted
    filename: str
    repo_type: str = "model"
    revision: str | None = None


def is_hub_id(ref: str) -> bool:
    """Whether `ref` names a Hub repo rather than a folder: not on disk, not a path (./, /, ~, a/b/c)."""
    return not (Path(ref).expanduser().exists() or ref.startswith((".", "/", "~")) or ref.count("/") > 1)


def model_files(ref: str, config: Config, zero_shot: bool = False) -> list[HubFile]:
    """What loading the model `ref` reads from the Hub first: its config.json (none for a folder)."""
    if not is_hub_id(ref):
        return []
    return [HubFile(xclip_checkpoint(ref) if zero_shot else checkpoint(ref), "config.json", revision=config.model.revision)]


def training_files(config: Config) -> list[HubFile]:
    """train.py: the checkpoint it fine-tunes, once the data is prepared (data.root holds its manifest; before
    that, the data's own line comes first); none where model.tiny_init makes the checkpoint."""
    if config.model.tiny_init is not None or not (Path(config.data.root) / "manifest.csv").is_file():
        return []
    return model_files(config.model.checkpoint, config)


def data_files(data: DataConfig) -> list[HubFile]:
    """prepare_data.py: data.source hub's archive."""
    if data.source != "hub":
        return []
    return [HubFile(dataset_archive(data), data.hub_filename, "dataset", data.hub_revision)]


def trained_model(given: str | None, config: Config, zero_shot: bool = False) -> str:
    """The model a serving command loads: `given` (--model), else model.checkpoint for --zero-shot, else the
    run folder train.output_dir, which must then exist (it is a folder train.py writes, never a Hub id)."""
    if given:
        return given
    if zero_shot:
        return config.model.checkpoint
    if not Path(config.train.output_dir).exists():
        raise UserError(f"model folder {config.train.output_dir} (train.output_dir) not found: train first "
                        "(python train.py) or pass --model FOLDER_OR_HUB_ID")
    return config.train.output_dir


def check_hub_files(files: list[HubFile]) -> None:
    """Where the Hub cannot be reached (HF_HUB_OFFLINE, or no answer), each of `files` must be in the cache;
    otherwise core/hub.py's one line for the case (see the module)."""
    if not files:
        return
    reason = None if offline() else unreachable()
    if not offline() and reason is None:
        return
    from huggingface_hub import try_to_load_from_cache

    for file in files:
        found = try_to_load_from_cache(file.wanted.repo, file.filename, revision=file.revision,
                                       repo_type=file.repo_type)
        if not isinstance(found, str):
            raise UserError(offline_line(file.wanted) if reason is None else no_answer(file.wanted, reason))
