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
    """Least-squares similarity (rotation, uniform scale, shift) mapping source points onto target
    points, as a 2x3 matrix: Umeyama's solution, which in 2-D has a closed form (no SVD)."""
    src_mean, dst_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - src_mean, target - dst_mean
    spread = (src * src).sum()
    cos_part = (src * dst).sum() / spread  # scale * cos(angle)
    sin_part = (src[:, 0] * dst[:, 1] - src[:, 1] * dst[:, 0]).sum() / spread  # scale * sin(angle)
    linear = np.array([[cos_part, -sin_part], [sin_part, cos_part]])
    return np.hstack([linear, (dst_mean - linear @ src_mean)[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Warp one face so its 5 landmarks land on the ArcFace template scaled to size x size."""
    matrix = similarity_transform(landmarks.astype(np.float64), ARCFACE_TEMPLATE_112 * (size / 112.0))
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


def align_faces(image: np.ndarray, all_landmarks: list[np.ndarray], size: int) -> np.ndarray:
    crops = np.empty((len(all_landmarks), size, size, 3), dtype=np.uint8)
    for index, landmarks in enumerate(all_landmarks):
        crops[index] = align_face(image, landmarks, size)
    return crops
