"""infer.compile: torch.compile a trained model before it answers (infer.py, eval.py, the timeline, the page;
torch backend only).

Inductor with its weights frozen (`freezing`: constants folded, the linear layers' weights packed once for
the CPU's matrix library), one graph whose batch dimension is left dynamic (ModelSpec.logits marks it) so
a video's views, a batch of several videos' and a timeline's last short batch share it; a batch of one
clip compiles its own graph (torch specialises sizes 0 and 1). The first forward pass compiles (seconds to
a minute, said on stderr); later ones run the compiled graph in the same precision as before (autocast
included). Off by default: the gain is a few percent per clip on a CPU (docs/serving.md#inference-speed),
worth it for long runs (a timeline, eval.py over a split), not for one video."""

from __future__ import annotations

import sys
from typing import Any

from ..core.errors import UserError

# torch.compile(options=...): inductor's settings for inference on frozen weights
INDUCTOR_OPTIONS = {"freezing": True}


def compile_for_inference(model: Any, enabled: bool) -> Any:
    """`model` compiled in place where `enabled` (infer.compile), said once on stderr."""
    if enabled:
        model.compile(options=INDUCTOR_OPTIONS)
        print("compile: torch.compile (inductor, frozen weights): the first forward pass compiles, later ones "
              "reuse it", file=sys.stderr)
    return model


def refuse_compile(enabled: bool, backend: str) -> None:
    """A one-line refusal of infer.compile on `backend` (onnxruntime, openvino: they run the exported graph)."""
    if enabled:
        raise UserError(f"infer.compile compiles torch's model; the {backend} backend runs the exported graph: "
                        "set infer.compile: false, or use --backend torch")
