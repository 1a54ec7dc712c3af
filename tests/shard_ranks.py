"""Run by tests/test_shards.py and tests/test_hf_stream.py under torchrun: each process streams its share of
the training videos (`shards`: of the shards at <root>; `hf`: of the dataset <root> was prepared from with
data.hf_dataset.streaming) with 2 DataLoader workers for 2 epochs and writes the videos it got per epoch to
<out>/rank<N>.json."""

import json
import sys
from pathlib import Path

import torch

from video_classifier.data.decoding import choose_decoder
from video_classifier.data.hf_source import HfStreamClipDataset
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import PreprocessSpec
from video_classifier.data.shards import ShardClipDataset

root, out, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "shards"
torch.distributed.init_process_group("gloo")
spec = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.5,) * 3, std=(0.5,) * 3)
label2id, records = load_prepared(root)
stream = {"shards": ShardClipDataset, "hf": HfStreamClipDataset}[kind](root, [r for r in records if r.split == "train"], label2id, spec, train=True,
                          decoder=choose_decoder("pyav").decode, shuffle_buffer=4, seed=3)
loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
epochs = []
for epoch in range(2):
    stream.set_epoch(epoch)
    epochs.append([item["video_index"] for item in loader])
rank = torch.distributed.get_rank()
(out / f"rank{rank}.json").write_text(json.dumps(epochs))
torch.distributed.barrier()
torch.distributed.destroy_process_group()
