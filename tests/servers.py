"""Real servers for the tests: embedded PostgreSQL databases and gunicorn-run services."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from facerec.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_pids(parent: int) -> set[int]:
    """Live children of a process (a gunicorn arbiter's workers), read from /proc."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue  # exited while we looked
        if int(ppid) == parent and state != "Z":
            children.add(int(stat.parent.name))
    return children


@contextmanager
def scratch_dir(prefix: str, keep_logs: Callable[[], bool] = lambda: False) -> Iterator[Path]:
    """A temporary folder for a database cluster and service logs, removed afterwards.

    Not under pytest's 0700 tmp dir: the embedded server runs as user 'pgserver' when we are root.
    With keep_logs() true at the end, only the logs and screenshots stay (a test run's cluster is ~400 MB).
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        if keep_logs():
            remove_all_but_evidence(path)
            print(f"\nlogs kept in {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def remove_all_but_evidence(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            remove_all_but_evidence(entry)
            if not any(entry.iterdir()):
                entry.rmdir()
        elif entry.suffix not in (".log", ".png"):
            entry.unlink()


def create_database(admin_url: str) -> str:
    """A new, empty database on the test server; returns its URI."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return admin_url.replace("/postgres?", f"/{name}?")


@dataclass
class Service:
    """One gunicorn-run service on a free loopback port."""

    folder: str
    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Service:
        env = {**os.environ, **self.env}
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(self.workers),
            "-b",
            f"127.0.0.1:{self.port}",
            "wsgi:app",
        ]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT / self.folder, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.stop()
                raise
        return self

    def wait_ready(self, path: str = "/health/live", timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.folder} exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if requests.get(self.url + path, timeout=2).status_code < 500:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.folder} not ready after {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def worker_pids(self) -> set[int]:
        return child_pids(self.process.pid)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
