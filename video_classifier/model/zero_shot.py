"""Zero-shot classification: videos scored against the names of the classes by X-CLIP, with no training.

`ZeroShotClassifier` wraps an `XCLIPModel` and the tokenized prompts (one per class, the class name as
words put into model.zero_shot_prompt) and answers `model(pixel_values=...)` with `.logits`: X-CLIP's
`logits_per_video`, (videos, classes). So it looks like a fine-tuned classifier to everything else: the
model description (ModelSpec: X-CLIP's processor normalisation, its vision_config's frame count),
the views, the decoders, the task (softmax over the classes), the metrics, the timeline and the page
run unchanged.

Each forward pass runs X-CLIP whole, text tower included, as its model card calls it: its prompt
generator conditions the class texts on each video's frames, so there is no text embedding to keep
across videos, and the text tower on a few short prompts costs little beside the vision tower.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, XCLIPModel, XCLIPProcessor
from transformers.modeling_outputs import ImageClassifierOutput

from ..core.config import Config
from ..core.errors import UserError, first_line
from ..core.hub import hub_call
from ..core.preflight import xclip_checkpoint
from ..core.task import MultiLabel
from ..data.manifest import LABELS
from ..data.storage import exists, read_bytes
from .model_spec import ModelSpec, describe

MODEL_TYPE = "xclip"  # the one text-video architecture transformers has (XCLIPModel)

# a cut between a lower-case letter or digit and a capital (ApplyEyeMakeup), and before the last capital
# of a run followed by lower case (TVShow -> TV Show)
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def label_words(name: str) -> str:
    """A class name as the words of a prompt: ApplyEyeMakeup -> apply eye makeup, jumping_jack ->
    jumping jack, PanUpRight -> pan up right; a name already in words ("air drumming") is kept."""
    words = _WORD_BREAK.sub(" ", name).replace("_", " ").replace("-", " ")
    return " ".join(words.split()).lower()


def prompts(class_names: list[str], template: str) -> list[str]:
    """One text per class: `template` (model.zero_shot_prompt) with the class name as words for {label}."""
    return [template.format(label=label_words(name)) for name in class_names]


class ZeroShotClassifier(torch.nn.Module):
    """An X-CLIP model and one prompt per class, answering as a video classifier: forward(pixel_values)
    (B, T, C, H, W) -> .logits (B, classes), X-CLIP's logits_per_video."""

    main_input_name = "pixel_values"

    def __init__(self, xclip: Any, text_inputs: dict[str, torch.Tensor], label2id: dict[str, int]):
        super().__init__()
        self.xclip = xclip
        # buffers: they follow the model to its device
        self.register_buffer("input_ids", text_inputs["input_ids"], persistent=False)
        self.register_buffer("attention_mask", text_inputs["attention_mask"], persistent=False)
        # X-CLIP's own config with our classes: ModelSpec reads the label maps and the task from it
        self.config = copy.deepcopy(xclip.config)
        self.config.label2id = dict(label2id)
        self.config.id2label = {i: label for label, i in label2id.items()}

    @property
    def device(self) -> torch.device:
        return self.xclip.device

    @property
    def dtype(self) -> torch.dtype:
        return self.xclip.dtype

    def forward(self, pixel_values: torch.Tensor) -> ImageClassifierOutput:
        out = self.xclip(input_ids=self.input_ids, attention_mask=self.attention_mask, pixel_values=pixel_values)
        return ImageClassifierOutput(logits=out.logits_per_video)


def zero_shot_classes(root: str | Path, names: list[str] | None = None) -> dict[str, int]:
    """The classes to score against: `names` (infer.py --labels) where given, else the label maps of the
    prepared folder `root` (labels.json); one line where there are none, or where the folder is multi-label
    (a softmax over the prompts picks one class per video)."""
    if names:
        if len(set(names)) != len(names):
            raise UserError(f"--labels {','.join(names)}: a class is named twice")
        return {name: i for i, name in enumerate(names)}
    if not exists(root, LABELS):
        raise UserError(f"--zero-shot scores videos against class names and found none: no {LABELS} in {root} "
                        "(data.root): prepare the data (prepare_data.py, one folder per class), or give "
                        "infer.py --labels NAME,NAME,...")
    labels = json.loads(read_bytes(root, LABELS))
    if labels.get("task") == MultiLabel.name:
        raise UserError(f"--zero-shot picks one class per video (a softmax over the class prompts); {root} is "
                        "multi-label: use a single-label data.root")
    if not labels.get("label2id"):
        raise UserError(f"{LABELS} in {root} names no classes: prepare the data again")
    return labels["label2id"]


def load_zero_shot(ref: str, label2id: dict[str, int], config: Config) -> tuple[ZeroShotClassifier, ModelSpec]:
    """The X-CLIP checkpoint `ref` (Hub id or folder, at model.revision) as a classifier of `label2id`'s
    classes, and its description: its processor's sizes and normalisation, its frame count, at
    data.sample_rate (X-CLIP records no stride) and data.sampling."""
    revision = config.model.revision
    if Path(ref).exists() and not (Path(ref) / "config.json").is_file():
        raise UserError(f"checkpoint folder {ref} has no config.json: --zero-shot takes an X-CLIP Hub id "
                        "(e.g. microsoft/xclip-base-patch32) or a folder with its config.json")
    wanted = xclip_checkpoint(ref)

    def fetch(load: Any) -> Any:  # a Hub id through core/hub.py: its failures in one line
        return load(ref, revision=revision) if Path(ref).exists() else hub_call(lambda: load(ref, revision=revision),
                                                                               wanted)

    try:
        model_type = fetch(AutoConfig.from_pretrained).model_type
        if model_type != MODEL_TYPE:
            raise UserError(f"--zero-shot needs an X-CLIP checkpoint (model_type {MODEL_TYPE}, e.g. "
                            f"microsoft/xclip-base-patch32); {ref} is {model_type}: pass --model with an X-CLIP "
                            "Hub id or folder, or drop --zero-shot")
        xclip = fetch(XCLIPModel.from_pretrained).eval()
        processor = fetch(XCLIPProcessor.from_pretrained)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load X-CLIP checkpoint {ref}: {first_line(err)} (--model / model.checkpoint "
                        "takes a Hub id or a folder with config.json)") from None
    class_names = sorted(label2id, key=label2id.get)
    texts = prompts(class_names, config.model.zero_shot_prompt)
    print(f"zero-shot: {len(texts)} classes scored against {texts[0]!r}, ... (model.zero_shot_prompt)",
          file=sys.stderr)
    text_inputs = processor(text=texts, return_tensors="pt", padding=True)
    model = ZeroShotClassifier(xclip, text_inputs, label2id).eval()
    spec = describe(model, processor, config.data.sample_rate, whole_video=config.data.sampling == "whole_video")
    return model, spec
