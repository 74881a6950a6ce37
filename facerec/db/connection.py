"""Which database to use, and a pooled, self-healing connection to it, per worker process.

The target is, first found: the setting saved by /config-database (a 0600 file that every
gunicorn worker re-reads when it changes), DATABASE_URL, the embedded server if it runs.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool, PoolTimeout

from facerec.db import embedded
from facerec.errors import DatabaseUnavailable
from facerec.settings import Settings

log = logging.getLogger(__name__)

NOT_CONFIGURED = "no database configured: call /config-database or set DATABASE_URL"
NO_SCHEMA = "the database has no face schema: run init_db.py against it"
UNREADABLE_SETTING = "the saved database setting (database.json in the state folder) cannot be read: see the log"
EMBEDDED_DOWN = "the embedded database is not running: scripts/services.sh start starts it"


class SavedDatabaseConfig:
    """The conninfo saved by /config-database; readable by the service's user alone."""

    def __init__(self, path: Path):
        self.path = path

    def stamp(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def load(self) -> str | None:
        try:
            conninfo = json.loads(self.path.read_text())["conninfo"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:  # every database call was a bare 500
            log.error("the saved database setting %s cannot be read (%s): fix it, or delete it", self.path, error)
            raise DatabaseUnavailable(UNREADABLE_SETTING, reason="database_setting_unreadable") from None
        if not isinstance(conninfo, str):
            log.error("the saved database setting %s holds no conninfo: fix it, or delete it", self.path)
            raise DatabaseUnavailable(UNREADABLE_SETTING, reason="database_setting_unreadable")
        return conninfo

    def save(self, conninfo: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".database-")
        except OSError as error:  # a read-only state folder was a bare 500
            log.error("cannot save the database setting in %s: %s", self.path.parent, error)
            message = f"cannot save the database setting in the state folder (FACEREC_STATE_DIR): {error.strerror}"
            raise DatabaseUnavailable(message, reason="database_setting_unsaved") from None
        try:
            with os.fdopen(descriptor, "w") as stream:  # mkstemp creates it 0600
                json.dump({"conninfo": conninfo}, stream)
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise


def test_connection(conninfo: str, timeout_s: float) -> None:
    """Connect once; raise psycopg.Error if the server, database or credentials are wrong."""
    with psycopg.connect(conninfo, connect_timeout=max(1, int(timeout_s))) as conn:
        conn.execute("SELECT 1")


class Database:
    """One connection pool for the current target; swapped when the target changes."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.saved = SavedDatabaseConfig(settings.database_config_file)
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._conninfo: str | None = None
        self._pool: ConnectionPool | None = None

    def source(self) -> str:
        """Which setting chose the database: the one /config-database saved, DATABASE_URL, or neither
        (the embedded server), in that order, as _target reads them."""
        if self.saved.stamp() is not None:
            return "config-database"
        return "DATABASE_URL" if self.settings.database_url else "embedded"

    def _target(self) -> str | None:
        saved = self.saved.load()
        if saved:
            return saved
        return self.settings.database_url or embedded.running_url(self.settings.embedded_pgdata)

    def _current_pool(self) -> ConnectionPool:
        stamp = self.saved.stamp()
        if stamp != self._stamp or self._pool is None:
            with self._lock:
                if stamp != self._stamp or self._pool is None:
                    self._switch(self._target())
                    self._stamp = stamp
        if self._pool is None:
            pgdata = self.settings.embedded_pgdata
            if (pgdata / "PG_VERSION").is_file():  # set up, but its server is down: not "not configured"
                raise DatabaseUnavailable(EMBEDDED_DOWN, reason="database_unavailable")
            raise DatabaseUnavailable(NOT_CONFIGURED, reason="database_not_configured")
        return self._pool

    def _switch(self, conninfo: str | None) -> None:
        if conninfo == self._conninfo and self._pool is not None:
            return
        old, self._pool, self._conninfo = self._pool, None, conninfo
        if old is not None:
            old.close(timeout=1)
        if conninfo:
            self._pool = ConnectionPool(
                conninfo,
                min_size=1,
                max_size=self.settings.db_pool_size,
                kwargs={"autocommit": True, "connect_timeout": max(1, int(self.settings.db_timeout_s))},
                configure=self._configure,
                check=ConnectionPool.check_connection,
                open=False,
                name="facerec",
            )
            self._pool.open(wait=False)
            log.info("database pool opened")

    def _configure(self, conn: psycopg.Connection) -> None:
        conn.execute(f"SET hnsw.ef_search = {int(self.settings.hnsw_ef_search)}")
        limit_s = self.settings.db_statement_timeout_s  # 0: none, as PostgreSQL's own 0 (it was 1 ms)
        conn.execute(f"SET statement_timeout = {max(1, round(limit_s * 1000)) if limit_s else 0}")

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A checked connection with pgvector registered; database faults become 503s."""
        pool = self._current_pool()
        try:
            with pool.connection(timeout=self.settings.db_timeout_s) as conn:
                _register_vector_once(conn)
                yield conn
        except PoolTimeout:
            raise DatabaseUnavailable("database unreachable", reason="database_unavailable") from None
        except psycopg.errors.QueryCanceled:
            raise DatabaseUnavailable(
                f"a database statement ran past the limit of {self.settings.db_statement_timeout_s:g} s "
                "(setting FACEREC_DB_STATEMENT_TIMEOUT_S)",
                reason="db_statement_timeout",
            ) from None
        except psycopg.errors.UndefinedTable:
            raise DatabaseUnavailable(NO_SCHEMA, reason="database_not_initialised") from None
        except psycopg.OperationalError:
            log.warning("database error", exc_info=True)
            raise DatabaseUnavailable("database unreachable", reason="database_unavailable") from None

    def close(self) -> None:
        with self._lock:
            self._switch(None)


def _register_vector_once(conn: psycopg.Connection) -> None:
    if conn.adapters.types.get("vector") is not None:
        return
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        raise DatabaseUnavailable(NO_SCHEMA, reason="database_not_initialised") from None
