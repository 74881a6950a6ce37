"""bench/matching.py end to end on a small gallery, and on a kept one whose index is not the one asked for."""

from __future__ import annotations

import json

import psycopg
import pytest

from bench.matching import main
from bench.plot_matching import index_label
from facerec.db import embedded, schema
from tests.servers import scratch_dir


@pytest.fixture()
def out():
    with scratch_dir("bench-matching-") as path:
        yield path
        embedded.stop(path / "pgdata")


def run(out, *options: str) -> dict:
    """The report of one run; its one gallery's result under "result"."""
    for old in out.glob("matching-*.json"):
        old.unlink()
    common = ["--sizes", "1k", "--out", str(out), "--queries", "40", "--warm-up", "5", "--ef", "40"]
    assert main([*common, *options]) == 0
    [path] = out.glob("matching-*.json")
    report = json.loads(path.read_text())
    [report["result"]] = report["results"]
    return report


def replace_index(out, definition: str | None) -> None:
    url = embedded.running_url(out / "pgdata").replace("/postgres?", "/bench_matching_1000?")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX {schema.VECTOR_INDEX}")
        if definition:
            conn.execute(definition)


def test_ours_against_the_original_then_a_kept_gallery_rebuilt(out):
    first = run(out, "--keep", "--baseline-queries", "3")["result"]
    original, ours = first["timings"]
    assert original["method"].startswith("original") and not original["extrapolated"]
    assert ours["method"] == "hnsw ef_search=40" and ours["recall_at_1"] >= 0.95
    assert "USING hnsw" in first["index"]  # (at 1k rows the planner prefers a scan: index_used is False)

    # A kept gallery that held an IVFFlat index (or lost its index) gets the HNSW index asked for.
    ivfflat = f"CREATE INDEX {schema.VECTOR_INDEX} ON {schema.TABLE} USING ivfflat (embedding vector_cosine_ops)"
    replace_index(out, ivfflat + " WITH (lists = 4)")
    second = run(out, "--keep", "--reuse", "--m", "8")["result"]
    assert "USING hnsw" in second["index"] and "m='8'" in second["index"]
    assert [t["method"] for t in second["timings"]] == ["hnsw ef_search=40"]  # the original's way not run again
    assert second["timings"][0]["recall_at_1"] >= 0.95

    replace_index(out, None)
    report = run(out, "--reuse", "--ef-construction", "32", "--huge-pages", "off")
    assert report["about"]["huge_pages"] == "off" and report["settings"]["huge_pages"] == "off"
    third = report["result"]
    assert "USING hnsw" in third["index"] and "ef_construction='32'" in third["index"]


def test_plot_labels_name_the_graph_the_minute_and_huge_pages():
    report = {"args": {"reuse": True, "m": None}, "about": {"date": "2026-11-28 21:57 UTC", "huge_pages": "on"}}
    result = {"size": 1_000_000, "index": "CREATE INDEX ... USING hnsw (...) WITH (m='24', ef_construction='200')"}
    assert index_label(report, result) == "HNSW m=24, ef_construction=200 (21:57 UTC), huge pages"
    report["about"]["huge_pages"] = "off"
    assert index_label(report, result) == "HNSW m=24, ef_construction=200 (21:57 UTC)"
