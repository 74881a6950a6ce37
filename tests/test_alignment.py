"""Alignment: the similarity transform is exact where it can be, and matches insightface's."""

from __future__ import annotations

import numpy as np
import pytest
from insightface.utils import face_align
from skimage.transform import SimilarityTransform

from facerec.inference.alignment import ARCFACE_TEMPLATE_112, align_face, similarity_transform
from tests.conftest import PACKAGE_PHOTOS
from tests.photos import faces_in


def test_recovers_a_known_similarity():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.random.default_rng(0).uniform(0, 100, (5, 2))
    target = scale * source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


@pytest.mark.parametrize("mirrored", [False, True])
def test_same_least_squares_fit_as_scikit_image(mirrored):
    """insightface estimates its alignment with scikit-image's Umeyama; noisy and mirrored points too."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        source = rng.uniform(0, 300, (5, 2))
        if mirrored:
            source[:, 0] *= -1  # the best proper similarity of a mirror image
        target = ARCFACE_TEMPLATE_112 + rng.normal(0, 3, (5, 2))
        theirs = SimilarityTransform.from_estimate(source, target).params[:2]
        np.testing.assert_allclose(similarity_transform(source, target), theirs, atol=1e-9)


def test_same_crop_as_insightface_norm_crop():
    image, faces = faces_in(PACKAGE_PHOTOS / "yaoming.jpg")
    ours = align_face(image, faces[0].landmarks, 112)
    theirs = face_align.norm_crop(image, faces[0].landmarks, 112)
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 1.0


@pytest.mark.parametrize("size", [112, 160])
def test_landmarks_land_on_the_scaled_template(size):
    _image, faces = faces_in(PACKAGE_PHOTOS / "yaoming.jpg")
    matrix = similarity_transform(faces[0].landmarks.astype(np.float64), ARCFACE_TEMPLATE_112 * size / 112)
    moved = faces[0].landmarks @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(moved - ARCFACE_TEMPLATE_112 * size / 112).max() < size * 0.06
