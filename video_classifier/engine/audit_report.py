"""audit/report.html: one page, each finding with a strip of frames of the video it names, sorted by score
within each kind of issue, the pictures inside the page (base64 JPEG) so that it opens offline and can be
sent as one file."""

from __future__ import annotations

import base64
import html
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..core.errors import DecodeError
from ..data.clips import decode_clip, readable
from ..data.decoding import choose_decoder
from ..data.manifest import VideoRecord

REPORT = "report.html"
STRIP_FRAMES = 6
THUMB_HEIGHT = 72
MAX_SHOWN = 60  # findings with pictures per kind of issue; the rest are listed (issues.csv has all)


def strip(record: VideoRecord, root: str, decode: Any) -> str:
    """STRIP_FRAMES frames spread over the record's span, side by side, as a data: URL ('' if it does not
    decode)."""
    last = max(record.frames - 1, 0)
    indices = sorted({record.first_frame + round(last * (k + 0.5) / STRIP_FRAMES) for k in range(STRIP_FRAMES)})
    try:
        frames = decode_clip(decode, readable(root, record.path), indices, record.fps)
    except DecodeError:
        return ""
    pictures = frames.permute(0, 2, 3, 1).numpy()
    height, width = pictures.shape[1:3]
    size = (max(1, round(width * THUMB_HEIGHT / height)), THUMB_HEIGHT)
    row = np.concatenate([np.asarray(Image.fromarray(p).resize(size)) for p in pictures], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(row).save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def write_report(findings: list[Any], records: list[VideoRecord], root: str, decoder: str, folder: Path,
                 headline: str) -> Path:
    """report.html in `folder` for `findings` (engine/audit.py's, in issues.csv's order)."""
    by_path = {r.path: r for r in records}
    decode = choose_decoder(decoder).decode
    shown = {}
    for kind in dict.fromkeys(f.issue for f in findings):
        shown[kind] = [f for f in findings if f.issue == kind]
    pictures: dict[str, str] = {}
    wanted = [f.path for rows in shown.values() for f in rows[:MAX_SHOWN] if f.path in by_path]
    for path in tqdm(list(dict.fromkeys(wanted)), desc="report", unit="video", file=sys.stderr):
        pictures[path] = strip(by_path[path], root, decode)
    sections = []
    for kind, rows in shown.items():
        items = []
        for number, f in enumerate(rows):
            picture = pictures.get(f.path, "") if number < MAX_SHOWN else ""
            image = f'<img src="{picture}" alt="frames of {html.escape(f.path)}">' if picture else ""
            items.append(f"<li><b>{f.score:.3f}</b> {html.escape(f.split)} <code>{html.escape(f.path)}</code>"
                         f"<br>{html.escape(f.details)}<br>{image}</li>")
        sections.append(f"<h2>{html.escape(kind)} ({len(rows)})</h2><ol>{''.join(items)}</ol>")
    body = "".join(sections) or "<p>No findings.</p>"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>audit of {html.escape(root)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}li{margin:.8em 0}img{display:block;margin-top:.3em}"
            "code{font-size:90%}</style></head>"
            f"<body><h1>Audit of {html.escape(root)}</h1><p>{html.escape(headline)}</p>{body}</body></html>")
    out = folder / REPORT
    partial = folder / f".{REPORT}.partial"
    partial.write_text(page)
    partial.replace(out)
    return out
