"""model.head: attentive on an architecture whose transformers head is linear (VideoMAE, TimeSformer, ViViT).

`AttentiveProbeForVideoClassification` is the backbone (any of transformers' video models, loaded with
its own weights) followed by transformers' own V-JEPA 2 attentive pooler, which reads all the
backbone's tokens (self-attention layers, then one learnt query's cross-attention), and a linear
classifier: the head V-JEPA 2's authors evaluate frozen backbones with. It is a transformers model
of its own type, registered with the Auto classes when this package is imported: `from_pretrained`,
`pipeline("video-classification")` and ONNX export load it then, as they load any model. Its folder also
holds this file (transformers' custom-code convention, `auto_map` in config.json), so plain transformers
loads it without this package with `trust_remote_code=True`; this file imports only torch and
transformers for that reason.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForVideoClassification,
    PreTrainedConfig,
    PreTrainedModel,
    VJEPA2Config,
)
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2AttentivePooler

# what video tools read off a video model's config (frames, sizes), copied from the backbone's
_INPUT_FIELDS = ("num_frames", "frames_per_clip", "image_size", "crop_size", "patch_size", "tubelet_size")


class AttentiveProbeConfig(PreTrainedConfig):
    """The backbone's config (as a dict) and the pooler's depth; the backbone's input fields on top,
    so anything that reads a video model's frame count and size reads them here too."""

    model_type = "video_attentive_probe"

    def __init__(self, backbone: dict[str, Any] | None = None, attentive_layers: int = 1, **kwargs: Any):
        self.backbone = dict(backbone or {})
        self.attentive_layers = attentive_layers
        for name in _INPUT_FIELDS:
            if name in self.backbone and name not in kwargs:
                kwargs[name] = self.backbone[name]
        super().__init__(**kwargs)

    def backbone_config(self) -> PreTrainedConfig:
        settings = dict(self.backbone)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


class AttentiveProbeForVideoClassification(PreTrainedModel):
    config_class = AttentiveProbeConfig
    base_model_prefix = "backbone"
    main_input_name = "pixel_values"
    input_modalities = "video"
    supports_gradient_checkpointing = True

    def __init__(self, config: AttentiveProbeConfig, backbone: nn.Module | None = None):
        super().__init__(config)
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config.backbone_config())
        inner = self.backbone.config
        hidden = inner.hidden_size
        pooler = VJEPA2Config(hidden_size=hidden, num_attention_heads=inner.num_attention_heads,
                              mlp_ratio=getattr(inner, "intermediate_size", 4 * hidden) / hidden,
                              num_pooler_layers=config.attentive_layers,
                              layer_norm_eps=getattr(inner, "layer_norm_eps", 1e-6))
        pooler._attn_implementation = "sdpa" if inner._attn_implementation == "sdpa" else "eager"
        self.pooler = VJEPA2AttentivePooler(pooler)
        self.classifier = nn.Linear(hidden, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is self.pooler:
            nn.init.trunc_normal_(module.query_tokens, std=0.02)
        elif isinstance(module, nn.Linear) and not any(module is m for m in self.backbone.modules()):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                **kwargs: Any) -> ImageClassifierOutput:
        tokens = self.backbone(pixel_values=pixel_values).last_hidden_state
        logits = self.classifier(self.pooler(tokens))
        loss = None
        if labels is not None:
            loss = (nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
                    if self.config.problem_type == "multi_label_classification"
                    else nn.functional.cross_entropy(logits, labels))
        return ImageClassifierOutput(loss=loss, logits=logits)


AttentiveProbeConfig.register_for_auto_class()
AttentiveProbeForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
AutoConfig.register(AttentiveProbeConfig.model_type, AttentiveProbeConfig, exist_ok=True)
AutoModelForVideoClassification.register(AttentiveProbeConfig, AttentiveProbeForVideoClassification, exist_ok=True)


def attentive_probe(backbone: PreTrainedModel, attentive_layers: int, **config: Any) -> AttentiveProbeForVideoClassification:
    """An attentive-probe classifier over `backbone` (a base model with its weights); `config`: label maps
    and problem_type as for any classification model."""
    probe_config = AttentiveProbeConfig(backbone=backbone.config.to_dict(), attentive_layers=attentive_layers,
                                        **config)
    return AttentiveProbeForVideoClassification(probe_config, backbone=backbone)
