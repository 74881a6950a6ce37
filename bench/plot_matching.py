"""Plot query latency (p50) against gallery size from bench/matching.py's JSON reports.

    .venv/bin/python bench/plot_matching.py bench/results/matching/*.json --out bench/results/matching/latency.png

One line per method and index (the original's way; HNSW at each ef_search), log-log, with recall@1
written beside each HNSW point. Needs matplotlib (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path


def index_label(report: dict) -> str:
    args = report["args"]
    return f"m={args.get('m') or 16}, ef_construction={args.get('ef_construction') or 128}"


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
                    ef_search = re.search(r"\d+", method).group()
                    label = f"HNSW {index_label(report)}, ef_search={ef_search}"
                point = (result["size"], timing["p50_ms"], timing["recall_at_1"], timing.get("extrapolated", False))
                lines[label].append(point)
    return {label: sorted(set(points)) for label, points in lines.items()}


def plot(lines: dict[str, list[tuple[int, float, float, bool]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 6))
    for label, points in sorted(lines.items()):
        sizes, p50 = [p[0] for p in points], [p[1] for p in points]
        style = "s--" if label.startswith("original") else "o-"
        axes.plot(sizes, p50, style, label=label)
        for size, ms, recall, extrapolated in points:
            note = "extrapolated" if extrapolated else ("" if label.startswith("original") else f"{recall:.3f}")
            axes.annotate(note, (size, ms), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axes.axhline(10, color="grey", linewidth=0.8, linestyle=":")
    axes.set(xscale="log", yscale="log", xlabel="gallery size (vectors)", ylabel="p50 query time (ms)")
    axes.set_title("One-face match: p50 against gallery size (labels: recall@1 against exact search)")
    axes.legend(fontsize=7)
    axes.grid(True, which="both", linewidth=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/matching/latency.png"))
    args = parser.parse_args()
    plot(series([json.loads(path.read_text()) for path in args.reports]), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
