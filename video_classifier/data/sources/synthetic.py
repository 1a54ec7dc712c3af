"""data.source synthetic: the motion dataset of synthetic.py, rendered into the folder being prepared."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ...core.config import DataConfig
from .. import synthetic
from ..manifest import VideoRecord, probe_video
from .archive import scan_videos
from .base import Source


def generate_synthetic(config: DataConfig, out: Path) -> list[VideoRecord]:
    """Render the synthetic set into `out`; its records (multi-label: the labels of each video, which
    its folder's name does not carry)."""
    specs = synthetic.plan(config.synthetic)
    records = []
    for spec in tqdm(specs, desc="generating videos", unit="video"):
        frames = synthetic.render(spec, config.synthetic)
        synthetic.write_video(frames, out / spec.relpath, config.synthetic.fps, config.synthetic.bits_per_pixel)
        records.append(VideoRecord(spec.relpath, spec.labels, spec.split, f"{spec.group:02d}",
                                   *probe_video(out / spec.relpath)))
    return records


class Synthetic(Source):
    name = "synthetic"
    refuses = "a stream: the videos are rendered once, into the prepared folder"

    def record(self, data: DataConfig) -> dict[str, Any]:
        return {"synthetic": asdict(data.synthetic)}

    def prepare(self, data: DataConfig, out: Path, full: bool) -> tuple[list[VideoRecord], bool]:
        if data.synthetic.multi_label:  # the labels of each video, which its folder's name does not carry
            return generate_synthetic(data, out), True
        generate_synthetic(data, out)
        return scan_videos(out), False  # as an archive's: read back from the layout
