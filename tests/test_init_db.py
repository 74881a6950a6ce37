"""init_db.py against a real embedded PostgreSQL: idempotent, keeps data, clear failures."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import numpy as np
import psycopg
import pytest

from facerec.db import schema
from facerec.db.cli import EXIT_AUTH, EXIT_NO_DATABASE, EXIT_UNREACHABLE
from facerec.settings import PROJECT_ROOT
from tests.servers import create_database, free_port


def run_init_db(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "init_db.py", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )


def socket_dir(url: str) -> str:
    return parse_qs(urlparse(url).query)["host"][0]


def insert_sample(url: str, sample_id: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO sample_face_vectors (sample_id, embedding, model) VALUES (%s, %s::vector, 'test')",
            (sample_id, str(np.ones(512).tolist())),
        )


def count_samples(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM sample_face_vectors").fetchone()[0]


def test_creates_schema(fresh_db_url):
    result = run_init_db("--url", fresh_db_url)
    assert result.returncode == 0, result.stderr
    assert f"version {schema.LATEST_VERSION}" in result.stdout
    with psycopg.connect(fresh_db_url) as conn:
        columns = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
                (schema.TABLE,),
            ).fetchall()
        )
        storage = conn.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
            (schema.TABLE,),
        ).fetchone()[0]
        indexes = {
            row[0] for row in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", (schema.TABLE,))
        }
    assert {
        "sample_id",
        "photo_id",
        "name",
        "metadata",
        "action",
        "embedding",
        "model",
        "created_at",
        "modified_at",
    } <= set(columns)
    assert storage == "p", "embedding must be STORAGE PLAIN"
    assert any("hnsw" in index and "vector_cosine_ops" in index for index in indexes)
    assert any("UNIQUE" in index and "(sample_id, photo_id)" in index for index in indexes)


# What the original's init_db.py made (ORIGINAL.md: vectors as JSON text, a surrogate id, no unique sample id).
ORIGINAL_TABLE = """
    CREATE TABLE sample_face_vectors (
        id SERIAL PRIMARY KEY, created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        modified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, sample_id TEXT NOT NULL, name TEXT NOT NULL,
        metadata TEXT, action TEXT, vector TEXT NOT NULL
    );
    CREATE INDEX sample_face_vectors_sample_id ON sample_face_vectors (sample_id);
    INSERT INTO sample_face_vectors (sample_id, name, metadata, action, vector)
        VALUES ('p1', 'P1', 'm', 'a', '[0.1, 0.2]'), ('p1', 'P1', 'm', 'a', '[0.3, 0.4]');
"""


def create_original_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ORIGINAL_TABLE)


def original_rows(url: str, table: str = "sample_face_vectors_original") -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT id, sample_id, vector FROM {table} ORDER BY id").fetchall()


def test_the_original_services_table_is_set_aside_not_dropped(fresh_db_url):
    create_original_table(fresh_db_url)
    result = run_init_db("--url", fresh_db_url)
    assert result.returncode == 0, result.stderr
    assert "renamed it sample_face_vectors_original with its 2 rows" in result.stdout
    assert f"version {schema.LATEST_VERSION}" in result.stdout
    assert original_rows(fresh_db_url) == [(1, "p1", "[0.1, 0.2]"), (2, "p1", "[0.3, 0.4]")]
    insert_sample(fresh_db_url, "new")  # the new table took the name, with its own indexes
    assert count_samples(fresh_db_url) == 1
    again = run_init_db("--url", fresh_db_url)
    assert again.returncode == 0 and "nothing to do" in again.stdout and "renamed" not in again.stdout
    assert len(original_rows(fresh_db_url)) == 2


def test_a_second_original_table_gets_a_name_of_its_own(fresh_db_url):
    create_original_table(fresh_db_url)
    assert run_init_db("--url", fresh_db_url).returncode == 0
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:  # as if the original had run again
        conn.execute("DROP TABLE sample_face_vectors; DROP TABLE facerec_schema_version")
    create_original_table(fresh_db_url)
    result = run_init_db("--url", fresh_db_url)
    assert result.returncode == 0, result.stderr
    assert "renamed it sample_face_vectors_original_2" in result.stdout
    assert len(original_rows(fresh_db_url)) == len(original_rows(fresh_db_url, "sample_face_vectors_original_2")) == 2


def test_second_run_changes_nothing_and_keeps_data(fresh_db_url):
    assert run_init_db("--url", fresh_db_url).returncode == 0
    insert_sample(fresh_db_url, "kept")
    again = run_init_db("--url", fresh_db_url)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert count_samples(fresh_db_url) == 1


def test_set_ups_at_once_all_succeed(pg_admin_url):
    """Set-ups of a new database at once (init_db runs, /config-database calls) each created the
    extension or the version table, and all but one failed on a unique index of the catalog."""
    for _ in range(5):
        url = create_database(pg_admin_url)
        ready = threading.Barrier(3)

        def set_up(_, url=url, ready=ready) -> list[int]:
            with psycopg.connect(url, autocommit=True) as conn:
                ready.wait()
                return schema.migrate(conn).applied

        with ThreadPoolExecutor(3) as pool:
            applied = list(pool.map(set_up, range(3)))
        assert sorted(applied) == [[], [], [1, 2]]


def test_reset_drops_data(fresh_db_url):
    assert run_init_db("--url", fresh_db_url).returncode == 0
    insert_sample(fresh_db_url, "dropped")
    result = run_init_db("--url", fresh_db_url, "--reset")
    assert result.returncode == 0, result.stderr
    assert count_samples(fresh_db_url) == 0


def vector_index_definition(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT pg_get_indexdef(%s::regclass)", (schema.VECTOR_INDEX,)).fetchone()[0]


def test_hnsw_index_rebuilt_with_other_options_keeps_data(fresh_db_url):
    assert run_init_db("--url", fresh_db_url).returncode == 0
    assert "m='16', ef_construction='128'" in vector_index_definition(fresh_db_url)
    insert_sample(fresh_db_url, "kept")
    result = run_init_db("--url", fresh_db_url, "--hnsw-m", "24", "--hnsw-ef-construction", "200")
    assert result.returncode == 0, result.stderr
    assert "rebuilt the HNSW index with m = 24, ef_construction = 200" in result.stdout
    assert "m='24', ef_construction='200'" in vector_index_definition(fresh_db_url)
    assert count_samples(fresh_db_url) == 1
    again = run_init_db("--url", fresh_db_url, "--hnsw-m", "24")
    assert again.returncode == 0 and "rebuilt" not in again.stdout


def test_hnsw_option_must_be_positive(fresh_db_url):
    result = run_init_db("--url", fresh_db_url, "--hnsw-m", "0")
    assert result.returncode == 2 and "positive integer" in result.stderr


def test_readme_flags(fresh_db_url):
    database = urlparse(fresh_db_url).path.lstrip("/")
    result = run_init_db("-H", socket_dir(fresh_db_url), "-P", "5432", "-d", database, "-u", "postgres", "-p", "x")
    assert result.returncode == 0, result.stderr
    assert count_samples(fresh_db_url) == 0


def test_old_location_in_face_detection_still_works(fresh_db_url):
    result = subprocess.run(
        [sys.executable, "init_db.py", "--url", fresh_db_url],
        cwd=PROJECT_ROOT / "face_detection",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_unreachable_host():
    result = run_init_db("-H", "127.0.0.1", "-P", str(free_port()), "-d", "db", "-u", "u", "-p", "p")
    assert result.returncode == EXIT_UNREACHABLE
    assert result.stderr.count("\n") == 1 and "cannot reach the database server" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_database(pg_admin_url):
    result = run_init_db("-H", socket_dir(pg_admin_url), "-d", "no_such_db", "-u", "postgres", "-p", "x")
    assert result.returncode == EXIT_NO_DATABASE
    assert result.stderr.count("\n") == 1 and "unknown database" in result.stderr


@pytest.fixture()
def password_user(pg_admin_url, pgdata):
    """A role that must give its password: pg_hba demands scram for it on the socket."""
    hba = pgdata / "pg_hba.conf"
    original = hba.read_text()
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS alice")
        conn.execute("CREATE ROLE alice LOGIN PASSWORD 'right-password'")
        hba.write_text("local all alice scram-sha-256\n" + original)
        conn.execute("SELECT pg_reload_conf()")
    yield "alice"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        hba.write_text(original)
        conn.execute("SELECT pg_reload_conf()")


def test_wrong_password(pg_admin_url, password_user):
    host = socket_dir(pg_admin_url)
    result = run_init_db("-H", host, "-d", "postgres", "-u", password_user, "-p", "wrong-password")
    assert result.returncode == EXIT_AUTH
    assert result.stderr.count("\n") == 1 and "authentication failed" in result.stderr
    assert "wrong-password" not in result.stderr


def test_missing_flag_is_a_usage_error():
    result = run_init_db("-H", "127.0.0.1", "-u", "postgres")
    assert result.returncode != 0
    assert "missing -d" in result.stderr


def test_without_a_password_flag_libpq_s_own_sources_count():
    """-p absent: PGPASSWORD and ~/.pgpass apply; an empty password in the conninfo blocked them."""
    from facerec.db.cli import _parser as parser
    from facerec.db.cli import conninfo_from_args

    conninfo = conninfo_from_args(parser().parse_args(["-H", "db.example", "-d", "faces", "-u", "app"]))
    assert "password" not in conninfo and "dbname=faces" in conninfo
    with_flag = conninfo_from_args(parser().parse_args(["-H", "db.example", "-d", "faces", "-u", "app", "-p", "s"]))
    assert "password=s" in with_flag


def test_the_module_runs_as_init_db(fresh_db_url):  # it did nothing, and exited 0
    result = subprocess.run(
        [sys.executable, "-m", "facerec.db.cli", "--url", fresh_db_url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "schema at version" in result.stdout, result.stdout + result.stderr
