"""Plot query latency (p50) against gallery size from bench/matching.py's JSON reports.

    .venv/bin/python bench/plot_matching.py bench/results/matching/*.json --out bench/results/matching/latency.png

Left: one line per method and index (the original's way; HNSW at each ef_search, IVFFlat at
each probes), log-log, with recall@1 written beside each point. Middle: at the largest gallery,
recall@1 against p50 for each index, one point per ef_search or probes; right: the same near the
target. Other JSON files among the reports (bench/pair_graphs.py's) are skipped, saying so. Needs
matplotlib (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path


def index_label(report: dict, result: dict) -> str:
    """The timed index, from its recorded definition (else the run's arguments); a run on a kept
    gallery carries its time, so that runs of one index on different minutes stay apart, and a
    server with shared_buffers in huge pages says so."""
    args = report["args"]
    options = dict(re.findall(r"(\w+)\s*=\s*'?(\d+)'?", (result.get("index") or "").partition(" WITH ")[2]))
    when = f" ({report['about']['date'][11:]})" if args.get("reuse") else ""
    if report["about"].get("huge_pages") == "on":
        when += ", huge pages"
    if args.get("index") == "ivfflat":
        return f"IVFFlat lists={options.get('lists') or args.get('lists') or max(1, result['size'] // 1000)}{when}"
    m = options.get("m") or args.get("m") or 16
    return f"HNSW m={m}, ef_construction={options.get('ef_construction') or args.get('ef_construction') or 128}{when}"


def series(reports: list[dict]) -> dict[str, list[tuple[int, float, float, bool]]]:
    """(gallery size, p50 ms, recall@1, extrapolated) by line label."""
    lines: dict[str, list[tuple[int, float, float, bool]]] = defaultdict(list)
    for report in reports:
        for result in report["results"]:
            for timing in result["timings"]:
                method = timing["method"]
                if method.startswith("original"):
                    label = "original (JSON, Python loop)"
                else:
                    setting, value = re.search(r"(ef_search|probes)=(\d+)", method).groups()
                    label = f"{index_label(report, result)}, {setting}={value}"
                point = (result["size"], timing["p50_ms"], timing["recall_at_1"], timing.get("extrapolated", False))
                lines[label].append(point)
    return {label: sorted(set(points)) for label, points in lines.items()}


def plot(lines: dict[str, list[tuple[int, float, float, bool]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_size, tuning, target) = plt.subplots(1, 3, figsize=(22, 6))
    for label, points in sorted(lines.items(), key=lambda item: _natural(item[0])):
        if len(points) > 1:
            _size_line(by_size, label, points)
    largest = max(point[0] for points in lines.values() for point in points)
    curves: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for label, points in lines.items():
        index, found, setting = label.rpartition(", ")
        if found and not label.startswith("original"):
            curves[index] += [(ms, recall, setting) for size, ms, recall, _ in points if size == largest]
    _tuning_curves(tuning, curves, f"{largest:,} vectors: recall against time")
    _tuning_curves(target, curves, f"{largest:,} vectors, near the target (p50 < 10 ms at recall@1 >= 0.99)")
    target.set(xlim=(4, 16), ylim=(0.96, 1.0))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110, bbox_inches="tight")


def _tuning_curves(axes, curves: dict[str, list[tuple[float, float, str]]], title: str) -> None:
    for index, points in sorted(curves.items()):
        points.sort()
        axes.plot([p[0] for p in points], [p[1] for p in points], "o-", label=index)
        for ms, recall, setting in points:
            note = setting.replace("_search", "")
            axes.annotate(note, (ms, recall), textcoords="offset points", xytext=(4, -10), fontsize=7, clip_on=True)
    axes.axvline(10, color="grey", linewidth=0.8, linestyle=":")
    axes.axhline(0.99, color="grey", linewidth=0.8, linestyle=":")
    axes.set(xlabel="p50 query time (ms)", ylabel="recall@1", title=title)
    axes.legend(fontsize=7)
    axes.grid(True, linewidth=0.3)


def _size_line(axes, label: str, points: list[tuple[int, float, float, bool]]) -> None:
    sizes, p50 = [p[0] for p in points], [p[1] for p in points]
    original = label.startswith("original")
    axes.plot(sizes, p50, "s--" if original else "o-", label=label)
    for size, ms, recall, extrapolated in points:
        note = "extrapolated" if extrapolated else ("" if original else f"{recall:.3f}")
        axes.annotate(note, (size, ms), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axes.axhline(10, color="grey", linewidth=0.8, linestyle=":")
    axes.set(xscale="log", yscale="log", xlabel="gallery size (vectors)", ylabel="p50 query time (ms)")
    axes.set_title("One-face match: p50 against gallery size (labels: recall@1 against exact search)")
    axes.legend(fontsize=7)
    axes.grid(True, which="both", linewidth=0.3)


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/matching/latency.png"))
    args = parser.parse_args()
    plot(series(matching_reports(args.reports)), args.out)
    print(f"wrote {args.out}")


def matching_reports(paths: list[Path]) -> list[dict]:
    reports = []
    for path in paths:
        report = json.loads(path.read_text())
        if isinstance(report, dict) and "results" in report and "args" in report:
            reports.append(report)
        else:
            print(f"skipped {path}: not a report of bench/matching.py")
    return reports


if __name__ == "__main__":
    main()
