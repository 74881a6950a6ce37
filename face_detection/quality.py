"""The enrolment quality gate: a sample must be a face large, certain and sharp enough to match well.

Recognition is not gated: a small or blurred face in a query is still reported, with its score.
"""

from __future__ import annotations

import cv2
import numpy as np

from facerec.errors import BadRequest
from facerec.inference.alignment import align_face
from facerec.inference.detector import DetectedFace
from facerec.settings import Settings

SHARPNESS_CROP_PX = 112  # measured on one fixed crop size, whatever the embedding model's


def sharpness(image: np.ndarray, face: DetectedFace) -> float:
    """Variance of the Laplacian of the face aligned to a 112x112 grey crop: low when blurred."""
    crop = align_face(image, face.landmarks, SHARPNESS_CROP_PX)
    return float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def quality_problem(image: np.ndarray, face: DetectedFace, settings: Settings) -> BadRequest | None:
    """Why this face would make a poor sample, or None when it passes."""
    size = min(face.width, face.height)
    if size < settings.min_face_px:
        return BadRequest(
            f"the face is {size:.0f} px (shorter side of its box), under the minimum of {settings.min_face_px} px "
            "(setting FACEREC_MIN_FACE_PX)",
            reason="face_too_small",
        )
    if face.score < settings.min_det_score:
        return BadRequest(
            f"detection score {face.score:.2f} is under the minimum of {settings.min_det_score} "
            "(setting FACEREC_MIN_DET_SCORE)",
            reason="low_detection_score",
        )
    if settings.min_sharpness > 0:
        measured = sharpness(image, face)
        if measured < settings.min_sharpness:
            return BadRequest(
                f"sharpness {measured:.0f} (variance of the Laplacian) is under the minimum of "
                f"{settings.min_sharpness} (setting FACEREC_MIN_SHARPNESS)",
                reason="too_blurry",
            )
    return None
