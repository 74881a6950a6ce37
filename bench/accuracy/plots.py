"""PNG plots of a results dict: ROC curves, score distributions, similarity against face size."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from bench.accuracy.metrics import NO_FACE, roc


def write_plots(results: dict, folder: Path) -> list[Path]:
    written = [_roc_plot(results, folder / "roc.png"), _scores_plot(results, folder / "scores.png")]
    if any("face_sizes" in variant for variant in results["variants"].values()):
        written.append(_face_size_plot(results, folder / "face_sizes.png"))
    return written


def _roc_plot(results: dict, path: Path) -> Path:
    set_names = list(next(iter(results["variants"].values()))["verification"])
    figure, axes = plt.subplots(1, len(set_names), figsize=(5.5 * len(set_names), 4.5), squeeze=False)
    for axis, set_name in zip(axes[0], set_names, strict=True):
        for name, variant in results["variants"].items():
            scores = variant["verification"][set_name]["scores"]
            curve = roc(np.array(scores["genuine"]), np.array(scores["impostor"]))
            floor = 1.0 / max(len(scores["impostor"]), 1)
            axis.step(np.maximum(curve.far, floor / 2), curve.tar, where="post", label=name)
        axis.set_xscale("log")
        axis.set_xlabel("false accept rate (pairs)")
        axis.set_ylabel("true accept rate")
        axis.set_title(f"ROC: {set_name}")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right")
    return _save(figure, path)


def _scores_plot(results: dict, path: Path) -> Path:
    variants = results["variants"]
    set_name = results["calibration"]["pairs_set"]
    figure, axes = plt.subplots(len(variants), 1, figsize=(7, 3.2 * len(variants)), squeeze=False)
    bins = np.linspace(-0.3, 1.0, 66)
    for axis, (name, variant) in zip(axes[:, 0], variants.items(), strict=True):
        scores = variant["verification"][set_name]["scores"]
        for label in ("impostor", "genuine"):
            values = [score for score in scores[label] if score > NO_FACE]
            axis.hist(values, bins=bins, alpha=0.6, density=True, label=f"{label} ({len(values)} pairs)")
        axis.axvline(results["run"]["threshold"], color="black", linestyle="--", label="threshold used")
        if "suggested_min_similarity" in results["calibration"]:
            axis.axvline(results["calibration"]["suggested_min_similarity"], color="red", label="calibrated")
        axis.set_title(f"{name}: cosine similarity, {set_name}")
        axis.legend(fontsize=8)
    return _save(figure, path)


def _face_size_plot(results: dict, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for name, variant in results["variants"].items():
        rows = variant.get("face_sizes", [])
        widths = [row["face_px"] for row in rows]
        (median,) = axis.plot(widths, [row["genuine_median"] for row in rows], marker="o", label=f"{name}: median")
        minimum = [row["genuine_min"] for row in rows]
        axis.plot(widths, minimum, marker=".", linestyle=":", color=median.get_color(), label=f"{name}: minimum")
    axis.axhline(results["run"]["threshold"], color="black", linestyle="--", label="threshold used")
    axis.set_xlabel("face width in the shrunk photo (px)")
    axis.set_ylabel("genuine similarity to full-size photos")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
