"""bench/accuracy: its pairs parsers, its measures, and one run through the real pipeline (no matplotlib needed)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from bench.accuracy.__main__ import main
from bench.accuracy.datasets import LabelledPhoto, Pair, pairs_among, read_pairs
from bench.accuracy.identification import align
from bench.accuracy.metrics import NO_FACE, roc, tar_at_far, threshold_at_far, verification_summary
from tests.conftest import PACKAGE_PHOTOS
from tests.photos import read

LFW_PAIRS = """10\t2
Yao_Ming\t1\t2
Yao_Ming\t1\tSpurs_Player\t1
"""


def test_lfw_layout(tmp_path):
    (tmp_path / "pairs.txt").write_text(LFW_PAIRS)
    root = tmp_path / "lfw"
    assert read_pairs(tmp_path / "pairs.txt", root) == [
        Pair(root / "Yao_Ming" / "Yao_Ming_0001.jpg", root / "Yao_Ming" / "Yao_Ming_0002.jpg", True),
        Pair(root / "Yao_Ming" / "Yao_Ming_0001.jpg", root / "Spurs_Player" / "Spurs_Player_0001.jpg", False),
    ]


def test_lfw_layout_with_a_single_count_and_images_beside_it(tmp_path):
    (tmp_path / "pairsDevTest.txt").write_text("1\nA 3 12\n")
    [pair] = read_pairs(tmp_path / "pairsDevTest.txt")
    assert pair == Pair(tmp_path / "A" / "A_0003.jpg", tmp_path / "A" / "A_0012.jpg", True)


def test_csv_pairs(tmp_path):
    (tmp_path / "pairs.csv").write_text("file_x,file_y,same\na/1.jpg,a/2.jpg,1\na/1.jpg,b/1.jpg,false\n")
    assert read_pairs(tmp_path / "pairs.csv") == [
        Pair(tmp_path / "a/1.jpg", tmp_path / "a/2.jpg", True),
        Pair(tmp_path / "a/1.jpg", tmp_path / "b/1.jpg", False),
    ]


@pytest.mark.parametrize(
    "text", ["2\nA 1\n", "file_x,file_y\na,b\n", "file_x,file_y,same\na,b,maybe\n"], ids=["short", "cols", "truth"]
)
def test_malformed_pairs_are_refused(tmp_path, text):
    (tmp_path / "pairs").write_text(text)
    with pytest.raises(ValueError):
        read_pairs(tmp_path / "pairs")


def test_pairs_among_one_person_photos_only(tmp_path):
    photos = [
        LabelledPhoto(tmp_path / "a1", ("a",)),
        LabelledPhoto(tmp_path / "a2", ("a",)),
        LabelledPhoto(tmp_path / "b1", ("b",)),
        LabelledPhoto(tmp_path / "group", ("a", "b")),
        LabelledPhoto(tmp_path / "unknown", (None,)),
    ]
    assert [(p.left.name, p.right.name, p.same) for p in pairs_among(photos)] == [
        ("a1", "a2", True),
        ("a1", "b1", False),
        ("a2", "b1", False),
    ]


def test_tar_at_far_counts_pairs_strictly_above_the_threshold():
    impostor = np.linspace(0.0, 0.99, 100)  # 0.00, 0.01, ... 0.99
    genuine = np.array([0.5, 0.95, 0.985, 0.995, NO_FACE])
    assert threshold_at_far(impostor, 0.01) == pytest.approx(0.98)  # accepts 0.99 only: 1 in 100
    assert tar_at_far(genuine, impostor, 0.01) == pytest.approx(0.4)
    assert threshold_at_far(impostor, 0.001) is None  # 100 impostor pairs cannot show 1 in 1000


def test_separable_scores_give_a_perfect_roc():
    genuine, impostor = np.array([0.6, 0.7, 0.8]), np.array([0.0, 0.1, NO_FACE])
    curve = roc(genuine, impostor)
    assert curve.far[0] == 0 and curve.tar[0] == 0 and curve.tar[-1] == 1
    summary = verification_summary(genuine, impostor, [0.5])
    assert summary["auc"] == 1.0 and summary["eer"] == 0.0 and summary["pairs_without_a_face"] == 1


def test_alignment_pairs_in_order_and_skips_what_the_detector_missed():
    assert align(["x", "y"], ["a", "b"]) == [(0, 0), (1, 1)]
    assert align(["b", None], ["a", "b", None]) == [(0, 1), (1, 2)]
    assert align(["a", "z", "b"], ["a", "b"]) == [(0, 0), (2, 1)]


def test_a_run_on_an_lfw_layout_through_the_real_pipeline(tmp_path):
    root = tmp_path / "lfw"
    for name in ("Yao_Ming", "Spurs_Player"):
        (root / name).mkdir(parents=True)
    shutil.copy(PACKAGE_PHOTOS / "yaoming.jpg", root / "Yao_Ming" / "Yao_Ming_0001.jpg")
    yao_in_the_team = read(PACKAGE_PHOTOS / "players.jpg")[80:300, 650:840]
    cv2.imwrite(str(root / "Yao_Ming" / "Yao_Ming_0002.jpg"), yao_in_the_team)
    shutil.copy(PACKAGE_PHOTOS / "gdp.jpg", root / "Spurs_Player" / "Spurs_Player_0001.jpg")
    (tmp_path / "pairs.txt").write_text(LFW_PAIRS)

    arguments = ["--pairs", str(tmp_path / "pairs.txt"), "--root", str(root), "--out", str(tmp_path / "out")]
    assert main([*arguments, "--compare-original"]) == 0

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["variants"]) == {"ours", "original"}
    scores = results["variants"]["ours"]["verification"]["pairs.txt"]["scores"]
    [genuine], [impostor] = scores["genuine"], scores["impostor"]
    threshold = results["run"]["threshold"]
    assert genuine > threshold > impostor
