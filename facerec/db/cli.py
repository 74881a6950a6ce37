"""init_db: create or migrate the sample_face_vectors schema. Idempotent; drops data only with --reset.

python init_db.py -H 127.0.0.1 -P 5432 -d FaceRecognition -u postgres -p postgres
python init_db.py --url postgresql://user:pass@host/db
python init_db.py            # DATABASE_URL, else the embedded database (started if needed)
python init_db.py --hnsw-m 24 --hnsw-ef-construction 200   # a bigger graph for a million faces
"""

from __future__ import annotations

import argparse
import sys
import time

import psycopg
from psycopg.conninfo import make_conninfo

from facerec.db import embedded, schema
from facerec.errors import InvalidSetting
from facerec.settings import get_settings

EXIT_UNREACHABLE, EXIT_AUTH, EXIT_NO_DATABASE, EXIT_NO_PGVECTOR, EXIT_SQL = 3, 4, 5, 6, 7


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="init_db.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-H", "--host", help="database host (or socket directory)")
    parser.add_argument("-P", "--port", type=int, default=5432)
    parser.add_argument("-d", "--db", "--db-name", dest="db", help="database name")
    parser.add_argument("-u", "--user", help="user name")
    parser.add_argument("-p", "--password", help="password")
    parser.add_argument("--url", help="libpq URI instead of the flags")
    parser.add_argument("--reset", action="store_true", help="drop the samples table first (loses data)")
    parser.add_argument("--hnsw-m", type=_positive, help="rebuild the HNSW index with this m (schema: 16)")
    parser.add_argument(
        "--hnsw-ef-construction", type=_positive, help="rebuild the HNSW index with this ef_construction (schema: 128)"
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def conninfo_from_args(args: argparse.Namespace) -> str:
    if args.url:
        return args.url
    if args.host or args.db or args.user:
        missing = [flag for flag, value in (("-H", args.host), ("-d", args.db), ("-u", args.user)) if not value]
        if missing:
            raise SystemExit(f"init_db.py: error: missing {', '.join(missing)}")
        given = {"host": args.host, "port": args.port, "dbname": args.db, "user": args.user, "password": args.password}
        return make_conninfo(**{key: value for key, value in given.items() if value})  # no -p: PGPASSWORD, .pgpass
    try:
        settings = get_settings()
    except InvalidSetting as error:
        raise SystemExit(f"init_db.py: {error}") from None
    return settings.database_url or embedded.start(settings.embedded_pgdata)


def classify_connection_error(error: psycopg.OperationalError) -> tuple[int, str]:
    """One clear line and an exit code for each way a connection fails."""
    text = str(error)
    first_line = next((line for line in text.splitlines() if line.strip()), text).strip()
    if "password authentication failed" in text or "no password supplied" in text:
        return EXIT_AUTH, f"authentication failed: {first_line}"
    if "does not exist" in text and "database" in text:
        return EXIT_NO_DATABASE, f"unknown database: {first_line} (create it first: createdb NAME)"
    return EXIT_UNREACHABLE, f"cannot reach the database server: {first_line}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    conninfo = conninfo_from_args(args)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            if args.reset:
                schema.drop_all(conn)
                print("dropped the samples table (--reset)")
            migrated = schema.migrate(conn)
            version = schema.current_version(conn)
            started = time.monotonic()
            rebuilt = schema.rebuild_vector_index(conn, args.hnsw_m, args.hnsw_ef_construction)
    except psycopg.OperationalError as error:
        code, message = classify_connection_error(error)
        print(f"init_db.py: {message}", file=sys.stderr)
        return code
    except schema.ExtensionMissing as error:
        print(f"init_db.py: {error}", file=sys.stderr)
        return EXIT_NO_PGVECTOR
    except psycopg.Error as error:
        print(f"init_db.py: database error: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return EXIT_SQL
    if migrated.set_aside:
        print(schema.set_aside_message(migrated.set_aside))
    if migrated.applied:
        print(f"schema at version {version} (applied {', '.join(map(str, migrated.applied))})")
    else:
        print(f"schema already at version {version}; nothing to do")
    if rebuilt:
        listed = ", ".join(f"{name} = {value}" for name, value in rebuilt.items())
        print(f"rebuilt the HNSW index with {listed} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":  # python -m facerec.db.cli, as init_db.py
    sys.exit(main())
