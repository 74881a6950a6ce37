"""Five-landmark face alignment to the ArcFace template, at any crop size."""

from __future__ import annotations

import cv2
import numpy as np

# insightface's ArcFace template for a 112x112 crop: eyes, nose tip, mouth corners.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping source points onto target points, as a 2x3 matrix."""
    src_mean, dst_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - src_mean, target - dst_mean
    covariance = dst.T @ src / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / src.var(axis=0).sum()
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Warp one face so its 5 landmarks land on the ArcFace template scaled to size x size."""
    matrix = similarity_transform(landmarks.astype(np.float64), ARCFACE_TEMPLATE_112 * (size / 112.0))
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


def align_faces(image: np.ndarray, all_landmarks: list[np.ndarray], size: int) -> np.ndarray:
    crops = np.empty((len(all_landmarks), size, size, 3), dtype=np.uint8)
    for index, landmarks in enumerate(all_landmarks):
        crops[index] = align_face(image, landmarks, size)
    return crops
