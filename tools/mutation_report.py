"""What `make mutate` mutates, and its report: killed / survived / timeout per module, the survivors listed.

    python tools/mutation_report.py --globs          # the mutant names `mutmut run` is given (TARGETS)
    python tools/mutation_report.py --write FILE     # mutants/*.meta -> FILE (JSON), then the table
    python tools/mutation_report.py [FILE]           # the table of a report written before

mutmut 3 mutates inside functions only and names each mutant `<module>.x_<function>__mutmut_<n>` or
`<module>.xǁ<Class>ǁ<method>__mutmut_<n>`. A module's score is the share of its mutants the fast tests
detect: killed (a test failed) or timed out (the change made a test loop: mutmut's own badge counts
these as detected too). "no tests": no selected test calls the function, so the change cannot be seen.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "runs" / "mutation" / "report.json"

# Report module -> {file: functions under mutation}; "*" is every function of the file. Elsewhere in
# these files the functions read files, decode videos or drive DataLoaders: the end-to-end tests'.
TARGETS: dict[str, dict[str, list[str]]] = {
    "task": {"video_classifier/core/task.py": ["*"]},
    "preprocessing": {"video_classifier/data/preprocessing.py": ["*"]},
    "records + splits": {
        "video_classifier/data/records.py": ["*"],
        # the split rule split_by_group reproduces over arrays (user_videos' other functions probe files)
        "video_classifier/data/user_videos.py": ["assign_splits", "_largest_remainder", "group_of", "file_name"],
    },
    "timeline smoother": {
        "video_classifier/serve/timeline.py": ["Timeline.class_intervals", "Timeline.segments", "Timeline.place_cut",
                                         "_at_least_one_frame", "label_path", "window_starts"],
    },
    "sources: frame-index math": {
        "video_classifier/data/datasets.py": ["ClipItems.*", "ClipDataset.window"],
        "video_classifier/data/decoding.py": ["playback_time", "BestEffortClock.*"],
        "video_classifier/data/shards.py": ["shards_of", "ShardClipDataset.assigned"],
        "video_classifier/data/storage.py": ["is_url", "join", "video_source"],
    },
}
DETECTED = ("killed", "timeout")


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def globs() -> list[str]:
    """fnmatch patterns of the mutant names of TARGETS ("?" stands for mutmut's "ǁ")."""
    out = []
    for files in TARGETS.values():
        for path, functions in files.items():
            module = module_name(path)
            for function in functions:
                if function == "*":
                    out.append(f"{module}.*")
                elif "." in function:
                    cls, method = function.split(".")
                    out.append(f"{module}.x?{cls}?{method}__mutmut_*")
                else:
                    out.append(f"{module}.x_{function}__mutmut_*")
    return out


def _changed_lines(name: str, path: str) -> list[str]:
    """The lines a mutant changes, as `- old` / `+ new`."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=path)
    return [line.rstrip() for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def collect(started: float | None) -> dict:
    """The report of the mutants in ./mutants (run from the repository root, after `mutmut run`)."""
    from mutmut.stats import status_by_exit_code

    patterns = globs()
    modules = {}
    for report_module, files in TARGETS.items():
        counts: dict[str, int] = {}
        survivors = []
        for path in files:
            meta = json.loads((Path("mutants") / (path + ".meta")).read_text())
            for name, code in sorted(meta["exit_code_by_key"].items()):
                if not any(fnmatch.fnmatch(name, p) for p in patterns):
                    continue
                status = status_by_exit_code[code]
                counts[status] = counts.get(status, 0) + 1
                if status not in DETECTED:
                    survivors.append({"mutant": name, "status": status, "change": _changed_lines(name, path)})
        total = sum(counts.values())
        modules[report_module] = {
            "mutants": total, "killed": counts.get("killed", 0), "survived": counts.get("survived", 0),
            "timeout": counts.get("timeout", 0), "no_tests": counts.get("no tests", 0),
            "other": total - sum(counts.get(s, 0) for s in ("killed", "survived", "timeout", "no tests")),
            "score": sum(counts.get(s, 0) for s in DETECTED) / total if total else None,
            "survivors": survivors,
        }
    from importlib.metadata import version

    return {"mutmut": version("mutmut"), "wall_seconds": round(time.time() - started) if started else None,
            "modules": modules}


def table(report: dict) -> str:
    rows = [("module", "mutants", "killed", "survived", "timeout", "no tests", "other", "score")]
    for name, m in report["modules"].items():
        score = "-" if m["score"] is None else f"{100 * m['score']:.1f}%"
        rows.append((name, *(str(m[k]) for k in ("mutants", "killed", "survived", "timeout", "no_tests", "other")),
                     score))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if report.get("wall_seconds") is not None:
        lines.append(f"\nmake mutate: {report['wall_seconds'] // 60} min {report['wall_seconds'] % 60} s "
                     f"(mutmut {report['mutmut']}); score = (killed + timeout) / mutants")
    for m in report["modules"].values():
        for s in m["survivors"]:
            lines.append(f"\n{s['status']}: {s['mutant']}")
            lines.extend(f"    {line}" for line in s["change"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", type=Path, default=REPORT, help="a report written by --write")
    parser.add_argument("--globs", action="store_true", help="print the mutant-name patterns for `mutmut run`")
    parser.add_argument("--write", type=Path, help="collect ./mutants into this report (JSON), then print it")
    args = parser.parse_args(argv)
    if args.globs:
        print(" ".join(globs()))
        return 0
    if args.write:
        started = args.write.parent / "started"  # written by `make mutate` as it begins
        report = collect(float(started.read_text()) if started.is_file() else None)
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps(report, indent=1) + "\n")
        args.report = args.write
    if not args.report.is_file():
        print(f"{args.report} not found: run `make mutate` first", file=sys.stderr)
        return 1
    print(table(json.loads(args.report.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
