"""buffalo_s's SCRFD-500M face detector, batched, on an onnxruntime (or onnx2torch CUDA) session.

Pre- and post-processing follow insightface's SCRFD (letterbox to the input size, (x - 127.5) / 128
on RGB, anchor decoding with its distance2bbox/distance2kps, NMS at 0.4), for a whole batch of
images in one model call: the services detect one photo at a time, enrolment batches and the GPU
pipeline many.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from facerec.inference.base import InferenceModel
from facerec.inference.onnx_graphs import PixelScaling
from facerec.inference.sessions import create_onnx_session
from facerec.inference.weights import resolve_buffalo_s
from facerec.settings import Settings

DETECTOR_FILE = "scrfd_500m_bnkps.onnx"


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2, clipped to the image
    score: float
    landmarks: np.ndarray  # 5x2: eyes, nose, mouth corners

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return self.width * self.height

    def xywh(self) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = (round(v) for v in self.box)
        return x1, y1, x2 - x1, y2 - y1

    def bbox_text(self) -> str:
        """The README's "x, y, w, h" string."""
        return ", ".join(str(v) for v in self.xywh())


STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
NMS_THRESHOLD = 0.4


class FaceDetector(InferenceModel):
    name = "scrfd_500m"
    scaling = PixelScaling(mean=127.5, scale=1 / 128)

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self._one_call_at_a_time: AbstractContextManager = nullcontext()

    def _load(self):
        path, self.weights_sha256 = resolve_buffalo_s(DETECTOR_FILE, self.settings.detector_weights)
        session = create_onnx_session(path, self.settings, self.scaling, self.name)
        if session.provider == "cpu":
            # onnxruntime's CPU arena then holds one call's memory (the warm-up's, the largest batch),
            # where concurrent calls grew it to the peak of their busiest overlap. A GPU runs the
            # calls in turn anyway, while the threads overlap the work around them.
            self._one_call_at_a_time = threading.Lock()
        return session

    @property
    def batch_size(self) -> int:
        """Images per model call: FACEREC_DET_BATCH, else 8 on a GPU and 1 on the CPU, where a batch
        of 8 took as long per image as one alone and held 100 MB more (bench/RESULTS.md, soak)."""
        self.load()
        return self.settings.det_batch or (1 if self.provider == "cpu" else 8)

    def _run_largest_call(self) -> None:
        """A batch of batch_size, so that onnxruntime's arena takes its size now."""
        blank = np.zeros((self.settings.det_size, self.settings.det_size, 3), dtype=np.uint8)
        self.detect_batch([blank] * self.batch_size)

    def _predict(self, image: np.ndarray) -> list[DetectedFace]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """The faces of each BGR image, best score first.

        SCRFD misses faces that fill the frame (insightface issues 1518, 2165), so an image with
        none is looked at again, centred in a canvas twice its size.
        """
        found: list[list[DetectedFace]] = []
        step = self.batch_size
        for start in range(0, len(images), step):
            found.extend(self._detect(images[start : start + step], pad=0))
        for index, faces in enumerate(found):
            if not faces:
                found[index] = self._detect([images[index]], pad=max(images[index].shape[:2]) // 2)[0]
        return found

    def _detect(self, images: list[np.ndarray], pad: int) -> list[list[DetectedFace]]:
        size = self.settings.det_size
        batch = np.zeros((len(images), size, size, 3), dtype=np.uint8)
        placed = np.array([_letterbox_into(batch[index], image, pad) for index, image in enumerate(images)])
        threshold = self.settings.det_threshold
        with self._one_call_at_a_time:
            candidates = self._session.run_images(batch, select=lambda outputs, xp: _candidates(outputs, threshold, xp))
        return _decode(candidates, size, placed, [image.shape[:2] for image in images], threshold)


def _candidates(outputs: list, threshold: float, xp) -> list:
    """The anchors scoring at least the threshold, picked where the model ran (so on a GPU only
    these leave it, not the 16,800 anchors of every image): per level, image and anchor indices,
    scores, box and landmark distances. xp is the outputs' array module (numpy or torch)."""
    count = len(STRIDES)
    picked = []
    for level in range(count):
        image_index, anchor_index = xp.where(outputs[level][..., 0] >= threshold)
        at = image_index, anchor_index
        picked += [image_index, anchor_index, outputs[level][at][:, 0], outputs[level + count][at]]
        picked.append(outputs[level + 2 * count][at])
    return picked


def _decode(
    candidates: list[np.ndarray],
    size: int,
    placed: np.ndarray,
    shapes: list[tuple[int, ...]],
    threshold: float,
) -> list[list[DetectedFace]]:
    """SCRFD's anchor decoding and NMS for a whole batch, then each image's faces, best score first.

    placed: per image, its scale and its offset in the canvas (_letterbox_into)."""
    from insightface.model_zoo.scrfd import distance2bbox, distance2kps

    images, scores, boxes, landmarks = [], [], [], []
    for level, stride in enumerate(STRIDES):
        image_index, anchor_index, level_scores, box_distances, landmark_distances = candidates[
            5 * level : 5 * (level + 1)
        ]
        centers = _anchor_centers(size, stride)[anchor_index]
        images.append(image_index)
        scores.append(level_scores)
        boxes.append(distance2bbox(centers, box_distances * stride))
        landmarks.append(distance2kps(centers, landmark_distances * stride).reshape(-1, 5, 2))
    found: list[list[DetectedFace]] = [[] for _ in shapes]
    all_images, all_scores = np.concatenate(images), np.concatenate(scores)
    if all_scores.size == 0:
        return found
    image_scale, offset = placed[all_images, 0], placed[all_images, 1]
    all_boxes = (np.concatenate(boxes) - offset[:, None]) / image_scale[:, None]
    all_landmarks = (np.concatenate(landmarks) - offset[:, None, None]) / image_scale[:, None, None]
    corner_size = np.hstack([all_boxes[:, :2], all_boxes[:, 2:] - all_boxes[:, :2]]).tolist()
    kept = cv2.dnn.NMSBoxesBatched(corner_size, all_scores.tolist(), all_images.tolist(), threshold, NMS_THRESHOLD)
    for i in sorted(np.asarray(kept).reshape(-1), key=lambda i: -all_scores[i]):
        image = int(all_images[i])
        found[image].append(_clipped_face(all_boxes[i], float(all_scores[i]), all_landmarks[i], shapes[image]))
    return found


@cache
def _anchor_centers(size: int, stride: int) -> np.ndarray:
    cells = size // stride
    grid = np.stack(np.mgrid[:cells, :cells][::-1], axis=-1).astype(np.float32).reshape(-1, 2) * stride
    return np.repeat(grid, ANCHORS_PER_CELL, axis=0)


def _letterbox_into(canvas: np.ndarray, image: np.ndarray, pad: int = 0) -> tuple[float, int]:
    """Resize keeping the aspect ratio into the zeroed square canvas, as insightface does: into its
    top-left, or with pad, where the image lands had it been framed by pad black pixels first (that
    larger image is never made: for a 12000x100 photo it took 870 MB). Returns the scale and the
    image's offset in the canvas."""
    size = canvas.shape[0]
    height, width = image.shape[:2]
    framed_height, framed_width = height + 2 * pad, width + 2 * pad
    # insightface's own arithmetic (SCRFD.detect): size * (h / w), not h * (size / w), which lands
    # just under a whole number for some sizes (a 1212x1212 photo became 640x639, its faces moved).
    ratio = framed_height / framed_width
    framed_resized = (int(size / ratio), size) if ratio > 1 else (size, int(size * ratio))
    scale = framed_resized[1] / framed_height
    if pad:  # the image inside the framed one, at that one's scale
        new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    else:
        new_width, new_height = (max(1, side) for side in framed_resized)  # a 2000x1 image is still one row
        scale = new_height / height  # insightface's det_scale
    offset = round(pad * scale)
    window = canvas[offset : offset + new_height, offset : offset + new_width]
    resized = cv2.resize(image, (new_width, new_height), dst=window)  # in place, no copy
    if not np.may_share_memory(resized, canvas):  # OpenCV made a new image: dst did not fit (not 3 channels)
        raise ValueError(f"expected a BGR image, got one of shape {image.shape}")
    return scale, offset


def _clipped_face(box: np.ndarray, score: float, landmarks: np.ndarray, shape: tuple[int, ...]) -> DetectedFace:
    height, width = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    clipped = (
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    )
    return DetectedFace(clipped, score, landmarks.astype(np.float32))
