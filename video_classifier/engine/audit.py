"""audit.py: what is wrong with a prepared folder, each finding with the videos it names.

Phases, each with its own module: fingerprints of every video (data/fingerprints.py) give duplicates
within a split and leaks across splits (engine/duplicates.py), and blank and frozen or near-static videos;
the backbone's features, through a probe that never saw the video it scores, give likely label errors,
videos far from every class and the classes most confused (engine/label_issues.py); the manifest gives
durations, sizes and frame rates far from their class's. The findings are written to `<data.root>/audit/`:
issues.csv (`path,split,issue,score,details`, one row per finding, highest score first within each issue),
summary.json (counts per issue) and report.html (engine/audit_report.py).
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..core.config import Config
from ..core.errors import DecodeError, UserError
from ..core.task import LABEL_SEPARATOR
from ..data.datasets import ViewDataset
from ..data.decoding import choose_decoder
from ..data.fingerprints import Fingerprint, fingerprint
from ..data.manifest import VideoRecord, load_prepared, prepared_task
from ..data.storage import video_source
from ..model.model_spec import describe
from ..model.modeling import ensure_tiny_checkpoint, load_for_training, load_processor, load_trained
from .audit_report import write_report
from .duplicates import clusters, find_matches
from .features import compute_features
from .label_issues import far_out, label_findings

AUDIT = "audit"  # the folder under data.root
ISSUES = "issues.csv"
SUMMARY = "summary.json"
KINDS = ("leak", "duplicate", "label", "outlier", "static", "blank", "overlap")
BLANK_SHARE = 0.9  # of a video's samples with one flat colour
FROZEN = 0.5  # luma levels: the most any sample changes from the one before, in a frozen video
NEAR_STATIC = 0.1  # of its class's median change: a video that hardly moves in a class that does
MOTION = 2.0  # luma levels: a class whose median change is above this moves
FACTOR = np.log(2.0)  # a duration, size or frame rate flagged is far out in its class and 2x from its median


@dataclass
class Finding:
    path: str
    split: str
    issue: str
    score: float
    details: str


def fingerprints(records: list[VideoRecord], root: str, decoder: str) -> tuple[list[Fingerprint | None], list[str]]:
    """Every record's fingerprint (None where it does not decode), and a line per failure."""
    decode = choose_decoder(decoder).decode
    prints: list[Fingerprint | None] = []
    failed = []
    for record in tqdm(records, desc="fingerprints", unit="video", file=sys.stderr):
        try:
            prints.append(fingerprint(record, root, decode))
        except DecodeError as err:
            prints.append(None)
            failed.append(str(err))
    return prints, failed


def duplicate_findings(records: list[VideoRecord], prints: list[Fingerprint | None]) -> list[Finding]:
    """A row per video of each cluster of copies: `leak` where the cluster spans splits, else `duplicate`."""
    matches = find_matches(prints)
    nearest: dict[int, tuple[float, int, float]] = {}
    for m in matches:
        for a, b in ((m.a, m.b), (m.b, m.a)):
            if a not in nearest or m.distance < nearest[a][0]:
                nearest[a] = (m.distance, b, m.shift_s if a == m.a else -m.shift_s)
    out = []
    for number, members in enumerate(clusters(matches, len(records)), start=1):
        splits = sorted({records[i].split for i in members})
        issue = "leak" if len(splits) > 1 else "duplicate"
        for i in members:
            distance, other, shift = nearest[i]
            out.append(Finding(records[i].path, records[i].split, issue, round(1 - distance / 32, 3),
                               f"cluster {number} ({len(members)} videos in {'+'.join(splits)}): like "
                               f"{records[other].path} ({records[other].split}), {distance:.1f} bits of 64 apart"
                               f" at a shift of {shift:+.1f} s"))
    return out


def content_findings(records: list[VideoRecord], prints: list[Fingerprint | None]) -> list[Finding]:
    """Blank videos; frozen ones; near-static ones in a class that moves."""
    out, moves = [], {}
    for record, p in zip(records, prints):
        if p is not None and len(p.change) > 1:
            moves.setdefault(record.label, []).append(float(np.median(p.change[1:])))
    class_motion = {label: float(np.median(v)) for label, v in moves.items()}
    for record, p in zip(records, prints):
        if p is None:
            continue
        blank = float(p.blank.mean())
        if blank >= BLANK_SHARE:
            out.append(Finding(record.path, record.split, "blank", round(blank, 3),
                               f"{blank:.0%} of its frames are one flat colour (black, white, a test card)"))
            continue
        if len(p.change) < 2:
            continue
        most, typical = float(p.change[1:].max()), float(np.median(p.change[1:]))
        if most < FROZEN:
            out.append(Finding(record.path, record.split, "static", 1.0,
                               f"frozen: no frame changes by more than {most:.2f} luma levels over "
                               f"{record.duration:.1f} s"))
        elif class_motion.get(record.label, 0) > MOTION and typical < NEAR_STATIC * class_motion[record.label]:
            ratio = typical / class_motion[record.label]
            out.append(Finding(record.path, record.split, "static", round(1 - ratio, 3),
                               f"near-static: it moves {ratio:.2f}x as much as its class {record.label}'s median"))
    return out


def measure_findings(records: list[VideoRecord], root: str) -> list[Finding]:
    """Durations, file sizes and frame rates far out from their class's (Tukey's far out, in log scale) and
    at least twice or half its median (a tight class would otherwise flag small differences)."""
    out = []
    sizes = []
    for record in records:
        source = video_source(root, record.path)
        sizes.append(float(source.stat().st_size) if isinstance(source, Path) and source.is_file() else np.nan)
    measures = {"duration": [r.duration for r in records], "frame rate": [r.fps for r in records], "size": sizes}
    for label in sorted({r.label for r in records}):
        members = [i for i, r in enumerate(records) if r.label == label]
        if len(members) < 8:
            continue
        for name, values in measures.items():
            logs = np.log(np.maximum(np.array([values[i] for i in members], dtype=float), 1e-9))
            if np.isnan(logs).any() or np.ptp(logs) == 0:
                continue
            median = float(np.exp(np.median(logs)))
            flagged = {k for k in set(far_out(logs)) | set(far_out(-logs)) if abs(logs[k] - np.median(logs)) >= FACTOR}
            for k in sorted(flagged):
                i = members[k]
                shown = _shown(name, values[i]), _shown(name, median)
                out.append(Finding(records[i].path, records[i].split, "outlier", round(min(1.0, abs(logs[k] - np.log(
                    median)) / 3), 3), f"{name} {shown[0]} against its class {label}'s median {shown[1]}"))
    return out


def _shown(name: str, value: float) -> str:
    return {"duration": f"{value:.1f} s", "frame rate": f"{value:.1f} fps", "size": f"{value / 1e6:.2f} MB"}[name]


def pooled_features(model: Any, spec: Any, records: list[VideoRecord], config: Config,
                    label2id: dict[str, int]) -> list[np.ndarray | None]:
    """Each video's backbone tokens averaged over tokens and eval.num_clips centre-crop views."""
    decode = choose_decoder(config.data.decoder).decode
    views = ViewDataset(records, config.data.root, label2id, spec.preprocess, config.eval.num_clips, 1, decode,
                        task=spec.task)
    features = compute_features(model, spec, views, config.eval.batch_size, "features")
    return [None if f is None else f.mean(dim=(0, 1)).numpy() for f in features]


def probe_findings(records: list[VideoRecord], features: list[np.ndarray | None], label2id: dict[str, int]
                   ) -> tuple[list[Finding], dict[str, Any]]:
    """Label errors, far-from-every-class outliers and overlapping classes (engine/label_issues.py)."""
    kept = [i for i, f in enumerate(features) if f is not None]
    names = {i: label for label, i in label2id.items()}
    labels = np.array([label2id[records[i].label] for i in kept])
    found = label_findings(np.stack([features[i] for i in kept]), labels, [records[i].group for i in kept],
                           len(label2id))
    out = []
    for k in found.issues:
        i, suggested = kept[k], int(found.suggested[k])
        out.append(Finding(records[i].path, records[i].split, "label", round(1 - float(found.quality[k]), 3),
                           f"labelled {records[i].label}; the probe suggests {names[suggested]} "
                           f"(p={found.pred_probs[k, suggested]:.2f}, its label p={found.pred_probs[k, labels[k]]:.2f})"
                           + ("; cleanlab counts it a likely error" if k in found.likely else "")))
    for k in found.outliers:
        i = kept[k]
        out.append(Finding(records[i].path, records[i].split, "outlier", round(1 - float(found.ood[k]), 3),
                           f"far from every class in feature space (cleanlab out-of-distribution score "
                           f"{found.ood[k]:.3f})"))
    for a, b, count, joint in found.overlap[:5]:
        examples = [records[kept[k]].path for k in range(len(kept))
                    if {labels[k], int(found.suggested[k])} == {a, b}][:3]
        out.append(Finding("", "", "overlap", round(joint, 4),
                           f"{names[a]} <-> {names[b]}: the probe confuses {count} videos (e.g. "
                           f"{', '.join(examples) or '-'})"))
    accuracy = float((found.suggested == labels).mean())
    return out, {"probe_top1": round(accuracy, 4), "probe_videos": len(kept), "likely_label_errors": len(found.likely)}


def write_findings(findings: list[Finding], folder: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """issues.csv and summary.json in `folder` (written whole, then renamed: a crash leaves the old ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    order = sorted(findings, key=lambda f: (KINDS.index(f.issue), -f.score, f.path))
    partial = folder / f".{ISSUES}.partial"
    with open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "split", "issue", "score", "details"])
        writer.writeheader()
        writer.writerows(asdict(finding) for finding in order)
    partial.replace(folder / ISSUES)
    counts = {kind: sum(f.issue == kind for f in findings) for kind in KINDS}
    leaked = sorted({f.path for f in findings if f.issue == "leak"})
    summary = {"counts": counts, "leaked_videos": leaked, **extra}
    (folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def one_line(summary: dict[str, Any]) -> str:
    """'3 videos leak across splits (2 clusters), 11 likely label errors, ...'."""
    c = summary["counts"]
    parts = [f"{c['leak']} videos in clusters that leak across splits ({summary['leak_clusters']} clusters)",
             f"{c['duplicate']} duplicates within a split", (f"{c['label']} labels the probe disputes ({summary.get('likely_label_errors', 0)} likely errors)"),
             f"{c['outlier']} outliers", f"{c['static']} static", f"{c['blank']} blank",
             f"{c['overlap']} overlapping class pairs"]
    return ", ".join(parts)


def check_audit_task(root: str, records: list[VideoRecord]) -> bool:
    """Whether the label check applies (single-label folders); a multi-label one is said, not refused."""
    single = prepared_task(root) == "single_label" and not any(LABEL_SEPARATOR in r.label for r in records)
    if not single:
        print("audit: the label check needs a single-label folder; this one is multi-label, so it is skipped",
              file=sys.stderr)
    return single


def audit_model(config: Config, model_ref: str | None) -> tuple[Any, Any]:
    """The model whose features the label check reads: a trained run or checkpoint (`model_ref`, audit.py
    --model), else the config's checkpoint with a new head (made first where model.tiny_init asks)."""
    if model_ref:
        return load_trained(model_ref, config.data.sample_rate)
    ensure_tiny_checkpoint(config.model, config.train.seed)
    label2id, _ = load_prepared(config.data.root)
    checkpoint = config.model.checkpoint
    model = load_for_training(checkpoint, label2id, model=config.model, revision=config.model.revision)
    return model, describe(model, load_processor(checkpoint, config.model.revision), config.data.sample_rate)


def audit(config: Config, model_ref: str | None = None, labels: bool = True, report: bool = True
          ) -> tuple[Path, dict[str, Any], list[Finding]]:
    """Every check over config.data.root's prepared videos (`labels`: the label check too, with the features
    of audit_model(model_ref)). The audit folder, its summary and the findings."""
    label2id, records = load_prepared(config.data.root)
    if not records:
        raise UserError(f"{config.data.root} holds no videos: prepare the data first (prepare_data.py)")
    prints, failed = fingerprints(records, config.data.root, config.data.decoder)
    findings = duplicate_findings(records, prints)
    findings += content_findings(records, prints) + measure_findings(records, config.data.root)
    extra: dict[str, Any] = {"videos": len(records), "not_decoded": failed}
    if labels and check_audit_task(config.data.root, records):
        model, spec = audit_model(config, model_ref)
        more, probe = probe_findings(records, pooled_features(model, spec, records, config, label2id), label2id)
        findings += more
        extra.update(probe, features_from=model_ref or config.model.checkpoint)
    extra["leak_clusters"] = len({f.details.split(" (")[0] for f in findings if f.issue == "leak"})
    folder = Path(config.data.root) / AUDIT
    summary = write_findings(findings, folder, extra)
    if report:
        ordered = sorted(findings, key=lambda f: (KINDS.index(f.issue), -f.score, f.path))
        write_report(ordered, records, config.data.root, config.data.decoder, folder, one_line(summary))
    return folder, summary, findings
