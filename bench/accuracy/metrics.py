"""Verification and identification measures from similarity scores; numpy only.

A pair is accepted when its cosine similarity is strictly above the threshold, as the service's
min_distance works. A pair where a face was not found scores NO_FACE: it is never accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NO_FACE = -1.0


@dataclass(frozen=True)
class Roc:
    thresholds: np.ndarray  # descending
    far: np.ndarray  # impostor pairs accepted, at each threshold
    tar: np.ndarray  # genuine pairs accepted, at each threshold


def roc(genuine: np.ndarray, impostor: np.ndarray) -> Roc:
    """Every distinct score as a threshold, plus one above them all (nothing accepted)."""
    scores = np.unique(np.concatenate([genuine, impostor]))[::-1]
    thresholds = np.concatenate([[math.inf], scores])
    return Roc(thresholds, _accepted(impostor, thresholds), _accepted(genuine, thresholds))


def _accepted(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    ordered = np.sort(scores)
    return (len(ordered) - np.searchsorted(ordered, thresholds, side="right")) / max(len(ordered), 1)


def threshold_at_far(impostor: np.ndarray, far: float) -> float | None:
    """The lowest threshold that accepts at most far of the impostor pairs; None when far < 1 / pairs."""
    allowed = math.floor(far * len(impostor) + 1e-9)
    if allowed < 1:
        return None
    return float(np.sort(impostor)[::-1][min(allowed, len(impostor) - 1)])


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float | None:
    threshold = threshold_at_far(impostor, far)
    return None if threshold is None else float(np.mean(genuine > threshold))


def equal_error_rate(curve: Roc) -> float:
    """Where the false-accept rate meets the false-reject rate (their mean at the closest threshold)."""
    frr = 1.0 - curve.tar
    index = int(np.argmin(np.abs(curve.far - frr)))
    return float((curve.far[index] + frr[index]) / 2)


def area_under(curve: Roc) -> float:
    far = np.concatenate([curve.far, [1.0]])
    tar = np.concatenate([curve.tar, [1.0]])
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def d_prime(genuine: np.ndarray, impostor: np.ndarray) -> float | None:
    """How far apart the two score distributions are, in their pooled standard deviations."""
    if len(genuine) < 2 or len(impostor) < 2:
        return None
    return float((genuine.mean() - impostor.mean()) / np.sqrt((genuine.var() + impostor.var()) / 2))


def gaussian_threshold(impostor: np.ndarray, far: float) -> float:
    """The impostor scores' normal fit, extrapolated to a false-accept rate too small to count."""
    from statistics import NormalDist

    return float(NormalDist(float(np.mean(impostor)), float(np.std(impostor))).inv_cdf(1.0 - far))


def verification_summary(genuine: np.ndarray, impostor: np.ndarray, fars: list[float]) -> dict:
    curve = roc(genuine, impostor)
    found_genuine = genuine[genuine > NO_FACE]
    found_impostor = impostor[impostor > NO_FACE]
    return {
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "pairs_without_a_face": int(np.sum(genuine <= NO_FACE) + np.sum(impostor <= NO_FACE)),
        "auc": round(area_under(curve), 4),
        "eer": round(equal_error_rate(curve), 4),
        "tar_at_far": {str(far): _rounded(tar_at_far(genuine, impostor, far)) for far in fars},
        "tar_above_every_impostor": round(float(np.mean(genuine > impostor.max())), 4) if len(impostor) else None,
        "d_prime": _rounded(d_prime(found_genuine, found_impostor)),
        "threshold_at_far": {str(far): _rounded(threshold_at_far(impostor, far)) for far in fars},
        "genuine_min_p5_median": _quantiles(found_genuine, [0.0, 0.05, 0.5]),
        "impostor_median_p99_max": _quantiles(found_impostor, [0.5, 0.99, 1.0]),
    }


def _quantiles(scores: np.ndarray, levels: list[float]) -> list[float] | None:
    return [round(float(v), 4) for v in np.quantile(scores, levels)] if len(scores) else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
