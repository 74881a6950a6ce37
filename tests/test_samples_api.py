"""Several photos per person over real HTTP: POST/GET /samples, deletes, and best-photo matching."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pytest
import requests

from facerec.db import schema
from facerec.db.connection import Database
from facerec.db.samples import MATCH_ONE_FACE, Sample, SampleStore
from facerec.settings import Settings
from tests.conftest import PACKAGE_PHOTOS
from tests.servers import create_database
from tests.test_face_detection_api import YAO, enrol, recognise, sample

GDP = PACKAGE_PHOTOS / "gdp.jpg"


def append(api: str, items: list) -> requests.Response:
    return requests.post(api + "/samples", json=items, timeout=120)


def listing(api: str, **params) -> dict:
    response = requests.get(api + "/samples", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def photos_of(api: str, sample_id: str) -> list[dict]:
    return listing(api, id=sample_id)["samples"]


def test_append_keeps_every_photo_and_reports_their_ids(api):
    first = append(api, [sample("p", path=YAO)]).json()
    second = append(api, [sample("p", path=GDP), sample("p", path=YAO, photo_id="mine-1")]).json()
    assert first["success"] == ["p"] and second["success"] == ["p", "p"]
    photo_ids = [first["photos"][0]["photo_id"], *(p["photo_id"] for p in second["photos"])]
    assert photo_ids[2] == "mine-1" and len(set(photo_ids)) == 3
    assert sorted(p["photo_id"] for p in photos_of(api, "p")) == sorted(photo_ids)


def test_recognition_matches_a_person_by_their_best_photo(api):
    body = append(api, [sample("p", path=GDP, name="P"), sample("p", path=YAO, name="P")]).json()
    yao_photo = body["photos"][1]["photo_id"]
    [face] = recognise(api, path=YAO).json()
    assert face["id"] == "p" and face["similarity"] > 0.99, "the yao photo, not the other one"
    requests.delete(f"{api}/samples/p/photos/{yao_photo}", timeout=30).raise_for_status()
    [face] = recognise(api, path=YAO).json()
    assert face["similarity"] < 0.5 and face["id"] == ""


def test_update_samples_replaces_every_appended_photo(api):
    append(api, [sample("p", path=YAO), sample("p", path=GDP)])
    assert enrol(api, [sample("p", path=YAO)]).json()["success"] == ["p"]
    assert [p["photo_id"] for p in photos_of(api, "p")] == [""]


def test_sending_a_photo_id_again_replaces_that_photo(api):
    append(api, [sample("p", path=YAO, photo_id="a", name="first")])
    body = append(api, [sample("p", path=GDP, photo_id="a", name="second")]).json()
    assert body["photos"] == [{"id": "p", "photo_id": "a"}]
    [photo] = photos_of(api, "p")
    assert photo["name"] == "second" and photo["modified_at"] > photo["created_at"]


def test_append_failures_name_the_photo_id(api):
    items = [
        sample("p", photo_id="same"),
        sample("p", photo_id="same"),
        sample("q", photo_id="no/slash"),
        {"id": "r", "photo_id": "r1", "image": "data:image/jpeg;base64,aGVsbG8="},
        sample("s", photo_id="."),  # path steps in a URL: /samples/s/photos/. would be photo ""
        sample("t", photo_id=".."),
    ]
    body = append(api, items).json()
    assert body["success"] == ["p"] and body["photos"] == [{"id": "p", "photo_id": "same"}]
    assert [(e["id"], e["photo_id"], e["reason"]) for e in body["errors"]] == [
        ("p", "same", "duplicate_id"),
        ("q", "no/slash", "invalid_photo_id"),
        ("r", "r1", "not_an_image"),
        ("s", ".", "invalid_photo_id"),
        ("t", "..", "invalid_photo_id"),
    ]


def test_list_pages_and_filters(api):
    ids = [f"id{i}" for i in range(5)]
    append(api, [sample(i, name="twins" if i in ("id1", "id3") else i) for i in ids])
    enrol(api, [sample("id0")])  # replaces id0's appended photo with photo ''
    page = listing(api, offset=1, limit=2)
    assert (page["total"], page["offset"], page["limit"]) == (5, 1, 2)
    assert [p["id"] for p in page["samples"]] == ["id1", "id2"]
    assert [p["id"] for p in listing(api, name="twins")["samples"]] == ["id1", "id3"]
    [photo] = listing(api, id="id0")["samples"]
    assert photo["photo_id"] == "" and photo["model"] == "arcface_mbf"
    assert set(photo) == {"id", "photo_id", "name", "metadata", "action", "model", "created_at", "modified_at"}
    assert listing(api)["limit"] == 100 and listing(api, offset=10)["samples"] == []


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"offset": -1}, {"offset": "1e3"}, {"id": "a\x00"}]
)
def test_invalid_list_parameters_are_json_400(api, params):
    response = requests.get(api + "/samples", params=params, timeout=30)
    assert response.status_code == 400 and response.json()["reason"].startswith("invalid_")


def test_cursor_pages_hold_their_place_while_photos_come_and_go(api):
    """With an offset, deleting a photo before the page skips one and adding one repeats one; pages
    asked `after` the previous page's `next` read every photo that stayed exactly once."""
    append(api, [sample(f"id{i}") for i in range(6)])
    first = listing(api, limit=2)
    assert [p["id"] for p in first["samples"]] == ["id0", "id1"] and first["next"]
    requests.delete(api + "/samples?id=id0", timeout=30)  # before the cursor: an offset of 2 would skip id2
    append(api, [sample("id1a"), sample("id4a")])  # one on the next page, one further on
    seen, page = [p["id"] for p in first["samples"]], first
    while page["next"]:
        page = listing(api, after=page["next"], limit=2)
        assert page["offset"] is None and page["total"] is None  # a walk does not count the gallery at each page
        seen += [p["id"] for p in page["samples"]]
    assert seen == ["id0", "id1", "id1a", "id2", "id3", "id4", "id4a", "id5"]
    assert [p["id"] for p in listing(api, offset=2, limit=2)["samples"]] == ["id2", "id3"]  # id1a, as read by offset
    last = listing(api, offset=6, limit=2)
    assert [p["id"] for p in last["samples"]] == ["id5"] and last["next"] is None
    exactly_full = listing(api, offset=5, limit=2)
    assert len(exactly_full["samples"]) == 2 and exactly_full["next"] is None  # no empty page after the last


def test_a_cursor_keeps_the_filters_and_ids_of_any_kind(api):
    ids = ["a/b", "ü ?#%", "z"]
    append(api, [sample(i, name="same") for i in ids] + [sample("other", name="else")])
    page, seen = listing(api, name="same", limit=1), []
    while True:
        seen += [p["id"] for p in page["samples"]]
        if not page["next"]:
            break
        page = listing(api, name="same", limit=1, after=page["next"])
    assert seen == sorted(ids)


def cursor(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        "not a cursor!",
        cursor(b"no separator"),
        cursor(b"a\x00b\x00c"),  # a NUL inside an id
        cursor(b"\x00p1"),  # no id, and no id listed
        cursor(b"\xff\x00"),  # not UTF-8
        cursor(b"\xed\xa0\x80\x00"),  # a lone surrogate, encoded: a 500 from psycopg once
        cursor(b"[" * 2000),
    ],
    ids=["not base64", "one part", "three parts", "no id", "not UTF-8", "surrogate", "JSON"],
)
def test_a_wrong_cursor_is_a_json_400(api, after):
    response = requests.get(api + "/samples", params={"after": after}, timeout=30)
    assert response.status_code == 400 and response.json()["reason"] == "invalid_after", response.text


def test_cursors_of_a_long_id_fit_the_request_line(api):
    """Listing one id, the cursor leaves the id out: 256 emoji (the longest id) in the filter and the
    cursor made a request line of 4,491 bytes, over gunicorn's 4,094 (414)."""
    long_id = "\N{GRINNING FACE}" * 256
    append(api, [sample(long_id, photo_id=f"p{i}") for i in range(3)] + [sample("a")])
    pages = [listing(api, id=long_id, limit=1)]
    while pages[-1]["next"]:
        pages.append(listing(api, id=long_id, limit=1, after=pages[-1]["next"]))
    assert [p["photo_id"] for page in pages for p in page["samples"]] == ["p0", "p1", "p2"]
    unfiltered = listing(api, limit=2)  # "a", then the long id's first photo: the cursor holds the id
    assert unfiltered["samples"][1]["id"] == long_id and len(unfiltered["next"]) < 1500
    assert [p["photo_id"] for p in listing(api, after=unfiltered["next"])["samples"]] == ["p1", "p2"]


def test_ids_are_filtered_and_deleted_within_the_id_limit_not_the_field_limit(start_detection):
    service = start_detection("fd-short-fields", FACEREC_MAX_FIELD_CHARS="100")
    long_id = "i" * 150  # within FACEREC_MAX_ID_CHARS (256)
    try:
        assert append(service.url, [sample(long_id, name="n", metadata="", action="")]).json()["success"] == [long_id]
        assert listing(service.url, id=long_id)["total"] == 1
        assert requests.delete(service.url + "/samples", params={"id": long_id}, timeout=30).status_code == 200
    finally:
        service.stop()


def test_offset_and_cursor_are_not_combined(api):
    append(api, [sample("a"), sample("b")])
    cursor = listing(api, limit=1)["next"]
    response = requests.get(api + "/samples", params={"after": cursor, "offset": 1}, timeout=30)
    assert response.status_code == 400 and response.json()["reason"] == "offset_with_after"


def test_delete_a_person_or_one_photo(api):
    body = append(api, [sample("a/b", path=YAO), sample("a/b", path=GDP), sample("keep")]).json()
    enrol(api, [sample("solo")])
    first_photo = body["photos"][0]["photo_id"]
    response = requests.delete(f"{api}/samples/a/b/photos/{first_photo}", timeout=30)
    assert response.json() == {"id": "a/b", "photo_id": first_photo, "removed": 1}
    assert len(photos_of(api, "a/b")) == 1
    assert requests.delete(f"{api}/samples/a/b", timeout=30).json() == {"id": "a/b", "removed": 1}
    assert requests.delete(f"{api}/samples/solo/photos/", timeout=30).status_code == 200
    assert [p["id"] for p in listing(api)["samples"]] == ["keep"]


def test_any_id_is_deleted_by_query_and_never_another_by_path(api):
    ids = ["/lead", "lead", "x/photos", "x", "a b/ü?#%", ".", "y/photos/p1", "y"]
    assert enrol(api, [sample(sample_id) for sample_id in ids]).json()["success"] == ids
    for sample_id in ("/lead", "x/photos"):  # read as /samples//lead and /samples/x/photos
        quoted = requests.utils.quote(sample_id, safe="")
        response = requests.delete(f"{api}/samples/{quoted}", allow_redirects=False, timeout=30)
        assert response.status_code == 404 and response.json()["reason"] == "non_canonical_path"
    assert {p["id"] for p in listing(api)["samples"]} == set(ids), "nobody else was deleted"
    for sample_id in ids:
        response = requests.delete(api + "/samples", params={"id": sample_id}, timeout=30)
        assert response.json() == {"id": sample_id, "removed": 1}
        assert sample_id not in {p["id"] for p in listing(api)["samples"]}
    append(api, [sample("p", path=YAO, photo_id="one")])
    enrol_missing = requests.delete(api + "/samples", params={"id": "p", "photo_id": ""}, timeout=30)
    assert enrol_missing.status_code == 404 and enrol_missing.json()["reason"] == "photo_not_found"
    one = requests.delete(api + "/samples", params={"id": "p", "photo_id": "one"}, timeout=30)
    assert one.json() == {"id": "p", "photo_id": "one", "removed": 1}
    no_id = requests.delete(api + "/samples", timeout=30)
    assert no_id.status_code == 400 and no_id.json()["reason"] == "missing_id"


@pytest.mark.parametrize("path", ["/samples/nobody", "/samples/keep/photos/nothing"])
def test_deleting_what_does_not_exist_is_json_404(api, path):
    append(api, [sample("keep")])
    response = requests.delete(api + path, timeout=30)
    assert response.status_code == 404 and response.json()["reason"] in ("sample_not_found", "photo_not_found")


# --- SampleStore.match against PostgreSQL, with vectors made to measure ----------------------


@pytest.fixture(scope="module")
def store(pg_admin_url):
    url = create_database(pg_admin_url)
    with psycopg.connect(url, autocommit=True) as conn:
        schema.migrate(conn)
    database = Database(Settings(database_url=url, hnsw_ef_search=10))
    yield SampleStore(database)
    database.close()


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def near(query: np.ndarray, similarity: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector whose cosine similarity with the unit query is `similarity`."""
    other = rng.standard_normal(query.shape)
    other = unit(other - other.dot(query) * query)
    return unit(similarity * query + np.sqrt(1 - similarity**2) * other)


def test_match_gives_distinct_people_with_their_best_photo(store):
    rng = np.random.default_rng(7)
    query = unit(rng.standard_normal(512))
    store.clear()
    rows = [(Sample("many", "Many", "", "", f"m{i}"), near(query, 0.95 - i * 0.01, rng)) for i in range(10)]
    rows += [(Sample("one", "One", "", "", "o"), near(query, 0.8, rng))]
    rows += [(Sample(f"noise{i}", "", "", "", "n"), unit(rng.standard_normal(512))) for i in range(300)]
    assert store.bulk_load(rows, "m") == 311
    [best] = store.match(np.stack([query]), "m")
    assert [(m.sample_id, m.photo_id) for m in best] == [("many", "m0")]
    [top] = store.match(np.stack([query]), "m", top_k=3)
    assert [m.sample_id for m in top][:2] == ["many", "one"], "ten photos of one person count once"
    assert top[0].similarity == pytest.approx(0.95, abs=1e-4) and len(top) == 3


def test_top_k_persons_even_when_one_has_more_photos_near_than_are_read(store):
    rng = np.random.default_rng(10)
    query = unit(rng.standard_normal(512))
    store.clear()
    rows = [(Sample("many", "", "", "", f"m{i}"), near(query, 0.95 - i * 0.001, rng)) for i in range(40)]
    rows += [(Sample(name, "", "", ""), near(query, similarity, rng)) for name, similarity in (("b", 0.8), ("c", 0.7))]
    rows += [(Sample(f"noise{i}", "", "", ""), unit(rng.standard_normal(512))) for i in range(300)]
    store.bulk_load(rows, "m")
    [top] = store.match(np.stack([query]), "m", top_k=3)  # reads 21 rows first: all of them "many"'s
    assert [m.sample_id for m in top] == ["many", "b", "c"]
    store.clear()
    store.bulk_load(rows[:41], "m")  # two persons only: every photo read, two answers
    [top] = store.match(np.stack([query]), "m", top_k=3)
    assert [m.sample_id for m in top] == ["many", "b"]


def test_a_person_re_enrolled_many_times_is_still_found(store):
    """Each re-enrolment leaves a dead version in the HNSW graph until a VACUUM takes it out; with
    more of them nearer the query than ef_search (10 here), the scan returned nobody."""
    rng = np.random.default_rng(11)
    query = unit(rng.standard_normal(512))
    store.clear()
    store.bulk_load([(Sample(f"noise{i}", "", "", ""), unit(rng.standard_normal(512))) for i in range(300)], "m")
    for version in range(30):
        store.upsert([(Sample("often", f"v{version}", "", ""), near(query, 0.95, rng))], "m")
    store.upsert([(Sample("often", "final", "", ""), near(query, 0.9, rng))], "m")
    [[best]] = store.match(np.stack([query]), "m")
    assert (best.sample_id, best.name) == ("often", "final") and best.similarity == pytest.approx(0.9, abs=1e-4)
    [top] = store.match(np.stack([query]), "m", top_k=2)
    assert top[0].sample_id == "often" and len(top) == 2


def test_overlapping_enrolments_in_opposite_orders_do_not_deadlock(store):
    rng = np.random.default_rng(12)
    store.clear()
    ids = [f"id{i}" for i in range(6)]

    def enrol(order: list[str]) -> None:
        for _ in range(15):
            store.upsert([(Sample(i, "", "", ""), unit(rng.standard_normal(512))) for i in order], "m")

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(enrol, ids), pool.submit(enrol, ids[::-1])]:
            future.result()  # PostgreSQL failed one of two deadlocked transactions: DeadlockDetected


def test_match_answers_each_face_in_order(store):
    rng = np.random.default_rng(8)
    queries = [unit(rng.standard_normal(512)) for _ in range(3)]
    store.clear()
    store.bulk_load([(Sample(f"p{i}", "", "", ""), near(q, 0.9, rng)) for i, q in enumerate(queries)], "m")
    assert [faces[0].sample_id for faces in store.match(np.stack(queries[::-1]), "m")] == ["p2", "p1", "p0"]
    assert store.match(np.empty((0, 512), np.float32), "m") == []


def test_match_walks_the_hnsw_index(store):
    rng = np.random.default_rng(9)
    store.clear()
    store.bulk_load([(Sample(f"s{i}", "", "", ""), unit(rng.standard_normal(512))) for i in range(2000)], "m")
    with store.database.connection() as conn:
        conn.execute("ANALYZE sample_face_vectors")
        plan = conn.execute(
            "EXPLAIN " + MATCH_ONE_FACE, {"vector": unit(rng.standard_normal(512)), "candidates": 1, "top_k": 1}
        )
        assert schema.VECTOR_INDEX in "\n".join(row[0] for row in plan)
