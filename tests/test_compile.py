"""infer.compile (model/compiling.py): the trained model compiled by torch.compile answers as the eager model
does, one graph for every batch size it meets, and the exported backends refuse the setting in one line."""

from __future__ import annotations

import pytest
import torch

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.data.datasets import ViewDataset
from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import load_prepared
from video_classifier.serve.inference import load_model


@pytest.fixture(autouse=True)
def own_inductor_cache(tmp_path_factory, monkeypatch):
    """A compile cache of this session's own: inductor's shared one (/tmp/torchinductor_<user>) does not key
    its kernels on ATEN_CPU_CAPABILITY, so a kernel it compiled under one (AVX2) fails to build under another
    (default: 'at::vec has not been declared'), as when the suite is rerun on a second CPU kernel."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "inductor"))


def test_the_compiled_model_answers_as_the_eager_one_at_every_batch_size(trained):
    """Every test video's 2 clips x 2 crops through the compiled tiny model, in batches of 4 views, then 3, then
    the rest (a video's views, a short batch, several videos' views): no recompiling after the first graph (its
    batch dimension dynamic), logits within 1e-4 of the largest eager logit (inductor fuses and reorders fp32
    sums; it does not change the arithmetic's precision), the same top-1 wherever the eager one leads by more
    than that. One clip alone (its own graph: torch specialises a batch of 1) answers as eager too."""
    config_path, out, _ = trained
    eager_config = load_config(config_path, ["infer.precision=fp32"])
    compiled_config = load_config(config_path, ["infer.precision=fp32", "infer.compile=true"])
    eager, spec = load_model(str(out), eager_config)
    compiled, compiled_spec = load_model(str(out), compiled_config)
    assert getattr(compiled, "_compiled_call_impl", None) is not None and eager._compiled_call_impl is None
    label2id, records = load_prepared(eager_config.data.root)
    test = [r for r in records if r.split == "test"]
    views = ViewDataset(test, eager_config.data.root, label2id, spec.preprocess, 2, 2, choose_decoder("pyav").decode,
                        task=spec.task)
    clips = torch.cat([views[i]["views"] for i in range(len(test))])
    torch._dynamo.reset()
    with torch.inference_mode():
        reference = spec.logits(eager, clips)
        first = compiled_spec.logits(compiled, clips[:4])  # compiles
        with torch._dynamo.config.patch(error_on_recompile=True):
            rest = [compiled_spec.logits(compiled, batch) for batch in (clips[4:7], clips[7:])]
        one = compiled_spec.logits(compiled, clips[:1])
    logits = torch.cat([first, *rest])
    bound = 1e-4 * reference.abs().max().item()
    assert (logits - reference).abs().max().item() <= bound
    assert (one - reference[:1]).abs().max().item() <= bound
    top2 = reference.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * bound
    assert clear.sum() >= len(test)
    assert torch.equal(logits.argmax(1)[clear], reference.argmax(1)[clear])


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_an_exported_backend_refuses_infer_compile_in_one_line(trained, backend):
    config_path, _, _ = trained
    config = load_config(config_path, ["infer.compile=true"])
    with pytest.raises(UserError) as err:
        load_model("runs/no-such-export", config, backend)
    message = str(err.value)
    assert message.startswith(f"infer.compile compiles torch's model; the {backend} backend runs the exported graph")
    assert "set infer.compile: false, or use --backend torch" in message and "\n" not in message
