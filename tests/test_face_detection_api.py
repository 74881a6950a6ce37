"""face_detection's README endpoints over real HTTP, with feature_extraction and PostgreSQL behind."""

from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pytest
import requests
from pgvector.psycopg import register_vector
from PIL import Image

from tests.conftest import PACKAGE_PHOTOS, data_uri, insightface_photo

YAO = PACKAGE_PHOTOS / "yaoming.jpg"
PLAYERS = PACKAGE_PHOTOS / "players.jpg"
BBOX = re.compile(r"^-?\d+, -?\d+, \d+, \d+$")


def sample(sample_id: str, path=YAO, **fields) -> dict:
    return {"id": sample_id, "name": sample_id, "image": data_uri(path), "metadata": "m", "action": "a", **fields}


def enrol(api: str, items: list) -> requests.Response:
    return requests.post(api + "/update-samples", json=items, timeout=120)


def recognise(api: str, path=PLAYERS, **fields) -> requests.Response:
    return requests.post(api + "/face-recognition", json={"image": data_uri(path), **fields}, timeout=120)


def rows(db_url: str, sample_id: str | None = None) -> list[tuple]:
    query = (
        "SELECT sample_id, name, metadata, action, embedding, model, created_at, modified_at FROM sample_face_vectors"
    )
    with psycopg.connect(db_url) as conn:
        register_vector(conn)
        if sample_id is None:
            return conn.execute(query).fetchall()
        return conn.execute(query + " WHERE sample_id = %s", (sample_id,)).fetchall()


def png_uri(array: np.ndarray, mime: str = "image/png") -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    import base64

    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


# --- /update-samples ---------------------------------------------------------------------


def test_enrol_success_shape_and_row(api, detection_db_url):
    response = enrol(api, [sample("yao", metadata="mydomain.com/myobject1", action="embedlink")])
    assert response.status_code == 200
    body = response.json()
    assert body["success"] == ["yao"] and body["fail"] == []
    [(sample_id, name, metadata, action, _embedding, model, created, modified)] = rows(detection_db_url, "yao")
    assert (sample_id, name, metadata, action, model) == (
        "yao",
        "yao",
        "mydomain.com/myobject1",
        "embedlink",
        "arcface_mbf",
    )
    assert created == modified


@pytest.mark.parametrize("mime", ["image/jpeg", "image/jpg", "image/png"])
def test_data_uri_mime_types_clients_send(api, mime):
    response = enrol(api, [{"id": "x", "name": "x", "image": data_uri(YAO, mime), "metadata": "", "action": ""}])
    assert response.json()["success"] == ["x"]


def test_every_id_ends_in_success_or_fail_with_reason(api):
    blank = png_uri(np.full((200, 200, 3), 128, np.uint8))
    items = [
        sample("good"),
        {"id": "no-face", "name": "n", "image": blank},
        {"id": "not-image", "name": "n", "image": "data:image/jpeg;base64,aGVsbG8="},
        {"id": "path", "name": "n", "image": "/etc/passwd"},
        {"id": "bad-b64", "name": "n", "image": "data:image/jpeg;base64,@@@"},
        {"id": "no-image", "name": "n"},
        {"name": "no id", "image": data_uri(YAO)},
    ]
    body = enrol(api, items).json()
    assert body["success"] == ["good"]
    assert body["fail"] == ["no-face", "not-image", "path", "bad-b64", "no-image", None]
    reasons = {e["id"]: e["reason"] for e in body["errors"]}
    assert reasons == {
        "no-face": "no_face",
        "not-image": "not_an_image",
        "path": "not_a_data_uri",
        "bad-b64": "invalid_base64",
        "no-image": "missing_image",
        None: "missing_id",
    }


def test_ids_come_back_as_sent(api, detection_db_url):
    blank = png_uri(np.full((200, 200, 3), 128, np.uint8))
    body = enrol(
        api,
        [
            sample(8, name="eight"),
            {"id": 9, "name": "n", "image": blank},
            sample("10", path=insightface_photo("t1.jpg")),
        ],
    )
    body = body.json()
    assert body["success"] == [8, "10"] and body["fail"] == [9]
    assert [warning["id"] for warning in body["warnings"]] == ["10"]
    assert {row[0] for row in rows(detection_db_url)} == {"8", "10"}  # stored as text: 8 and "8" are one sample


def test_several_faces_enrol_the_largest_and_say_so(api):
    body = enrol(api, [sample("group", path=insightface_photo("t1.jpg"))]).json()
    assert body["success"] == ["group"]
    assert body["warnings"] and "6 faces" in body["warnings"][0]["message"]


def test_re_enrolment_replaces_the_vector(api, detection_db_url):
    enrol(api, [sample("same", path=YAO, name="first")])
    [before] = rows(detection_db_url, "same")
    enrol(api, [sample("same", path=PACKAGE_PHOTOS / "gdp.jpg", name="second")])
    [after] = rows(detection_db_url, "same")
    assert after[1] == "second"
    assert not np.allclose(before[4].to_numpy(), after[4].to_numpy())
    assert after[6] == before[6] and after[7] > before[7]  # created kept, modified updated


def test_concurrent_enrolments_of_one_id_leave_one_row(api, detection_db_url):
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda i: enrol(api, [sample("racy", name=f"n{i}")]), range(8)))
    assert all(r.json()["success"] == ["racy"] for r in responses)
    assert len(rows(detection_db_url, "racy")) == 1


def test_sql_looking_values_are_stored_verbatim(api, detection_db_url):
    nasty = 'Robert\'); DROP TABLE sample_face_vectors;-- 名前 "quoted"'
    body = enrol(api, [sample("o'brien", name=nasty, metadata=nasty, action=nasty)]).json()
    assert body["success"] == ["o'brien"]
    [row] = rows(detection_db_url, "o'brien")
    assert row[1:4] == (nasty, nasty, nasty)
    assert enrol(api, [sample("after")]).json()["success"] == ["after"]  # the worker still works


def test_duplicate_ids_in_one_request_keep_the_last(api, detection_db_url):
    body = enrol(api, [sample("dup", name="first"), sample("dup", name="last")]).json()
    assert body["success"] == ["dup"] and body["fail"] == ["dup"]
    assert body["errors"][0]["reason"] == "duplicate_id"
    assert rows(detection_db_url, "dup")[0][1] == "last"


@pytest.mark.parametrize("payload", ["{not json", '{"id": "x"}', "3", '"text"'])
def test_update_samples_invalid_request(api, payload):
    response = requests.post(
        api + "/update-samples", data=payload, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request."


# --- /face-recognition -------------------------------------------------------------------


def test_recognises_yao_ming_among_players(api, detection_db_url):
    enrol(api, [sample("yao_ming", name="Yao Ming", metadata="nba")])
    before = [(r[0], r[7]) for r in rows(detection_db_url)]
    response = recognise(api)
    assert response.status_code == 200
    faces = response.json()
    assert len(faces) >= 18
    for face in faces:
        assert BBOX.match(face["bbox"]), face["bbox"]
        assert {"bbox", "id", "name", "metadata"} <= set(face)
    matched = [f for f in faces if f["id"]]
    assert [(f["id"], f["name"], f["metadata"]) for f in matched] == [("yao_ming", "Yao Ming", "nba")]
    assert matched[0]["similarity"] > 0.5
    assert all(f["name"] == "" and f["metadata"] == "" for f in faces if not f["id"])
    x = [int(f["bbox"].split(",")[0]) + int(f["bbox"].split(",")[2]) / 2 for f in faces]
    assert x == sorted(x), "faces are listed left to right"
    assert [(r[0], r[7]) for r in rows(detection_db_url)] == before, "recognition never writes to the database"


def test_min_distance_is_a_minimum_similarity(api):
    enrol(api, [sample("yao_ming")])
    assert [f for f in recognise(api, min_distance=0.99).json() if f["id"]] == []
    assert len([f for f in recognise(api, min_distance="0.2").json() if f["id"]]) == 1


def test_no_face_is_an_empty_list(api):
    response = requests.post(
        api + "/face-recognition", json={"image": png_uri(np.full((120, 160, 3), 30, np.uint8))}, timeout=30
    )
    assert response.status_code == 200 and response.json() == []


def test_empty_gallery_leaves_faces_unmatched(api):
    faces = recognise(api, path=YAO).json()
    assert len(faces) == 1 and faces[0]["id"] == "" and faces[0]["similarity"] is None


@pytest.mark.parametrize(
    "body",
    [None, [], {"min_distance": 0.3}, {"image": 5}, {"image": "file:///etc/passwd"}, {"image": "../../etc/passwd"}],
)
def test_face_recognition_invalid_request(api, body):
    response = requests.post(api + "/face-recognition", json=body, timeout=30)
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize("value", [-0.1, 1.5, "NaN", "abc", True, [0.3]])
def test_invalid_min_distance(api, value):
    response = recognise(api, path=YAO, min_distance=value)
    assert response.status_code == 400 and response.json()["reason"] == "invalid_min_distance"


def test_invalid_json_is_the_readme_error(api):
    response = requests.post(
        api + "/face-recognition", data="{oops", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400 and response.json()["error"] == "Invalid request."


# --- /clear-samples ----------------------------------------------------------------------


def test_clear_samples_as_old_clients_send_it(api, detection_db_url):
    enrol(api, [sample("gone")])
    response = requests.get(api + "/clear-samples", headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["success"] == "Samples have been removed successfully"
    assert rows(detection_db_url) == []


# --- identities of ../shared/faces -------------------------------------------------------


def test_shared_gallery_probes_are_identified(api, shared_faces, manifest):
    gallery = [
        sample(f"{person}/{name}", path=shared_faces / "gallery" / person / name, name=person)
        for person, names in manifest["gallery"].items()
        for name in names
    ]
    body = enrol(api, gallery).json()
    assert body["fail"] == [] and len(body["success"]) == len(gallery)
    for probe, expected in manifest["probes"].items():
        faces = recognise(api, path=shared_faces / "probes" / probe).json()
        found = [face["name"] or None for face in faces]
        assert found == expected["faces"], probe
