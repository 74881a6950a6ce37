"""gunicorn settings shared by both services; each service's gunicorn.conf.py imports them.

Command-line flags (-w, -b, ...) override everything here, as in the original README.
Threads: each worker serves several requests at once (gthread), while each model call takes the
intra-op threads that the free cores allow (facerec.inference.sessions.CpuThreads).
"""

import atexit
import gc
import glob
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
from typing import NoReturn

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from facerec import memory
from facerec.errors import InvalidSetting
from facerec.settings import Settings


class _PatientSocket(socket.socket):
    """A client's socket whose blocking reads and writes give up after the client's silence; a read
    given up on reads as the end of the stream, which gunicorn and Werkzeug take as a client gone
    (instead of logging a traceback for each)."""

    __slots__ = ()  # the layout of socket.socket, so that an accepted socket can become one
    silence_s: float | None = None

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.silence_s)
        else:
            super().setblocking(False)

    def recv(self, size: int, flags: int = 0) -> bytes:
        try:
            return super().recv(size, flags)
        except TimeoutError:
            self._log_silence()
            return b""

    def _log_silence(self) -> None:
        try:
            peer = self.getpeername()
        except OSError:
            peer = "?"
        logging.getLogger("gunicorn.error").warning(
            "client %s silent for %s s mid-request (FACEREC_CLIENT_TIMEOUT_S): connection closed", peer, self.silence_s
        )


class TimedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, but a request thread stops waiting on a client that went silent
    mid-request. gthread reads a request on a blocking socket without a timeout once its first
    bytes arrived: eight half-sent requests held all 2 x 4 threads of face_detection for as long
    as their sockets stayed open. A client that sends a byte now and then still holds a thread:
    where clients are not trusted, put a buffering proxy (nginx) in front (README)."""

    def handle(self, conn):
        if type(conn.sock) is socket.socket:  # a TLS socket keeps its own ways
            conn.sock.__class__ = _PatientSocket
        return super().handle(conn)


def cannot_start(error: InvalidSetting) -> NoReturn:
    """Stop gunicorn before it starts, saying why in one line (an exception raised here came after
    "Failed to read config file" and a traceback)."""
    print(f"gunicorn cannot start: {error}", file=sys.stderr, flush=True)
    sys.exit(1)


def count_from_env(variable: str, default: int) -> int:
    """A worker or thread count from the environment; at start, a value that is not one names its variable."""
    raw = os.environ.get(variable) or str(default)
    if not (raw.strip().isdigit() and int(raw) > 0):
        cannot_start(InvalidSetting(f"{variable}={raw!r}: expected a whole number, 1 or more"))
    return int(raw)


def _settings_or_stop() -> Settings:
    try:
        return Settings.from_env()
    except InvalidSetting as error:
        cannot_start(error)


_settings = _settings_or_stop()
_PatientSocket.silence_s = _settings.client_timeout_s or None
worker_class = TimedThreadWorker
threads = count_from_env("FACEREC_GUNICORN_THREADS", 4)
timeout = _settings.gunicorn_timeout_s
graceful_timeout = 30
keepalive = 30
control_socket_disable = True  # two services on one host would fight over the default socket path


def _write_json_error(sock, status_int, reason, mesg):
    """gunicorn's own answer to a request it cannot parse, before the app sees it (a request line over
    4094 bytes: 414; too many or too large headers: 431; a malformed request: 400), as JSON like every
    other error of these services instead of its HTML page."""
    body = json.dumps({"error": mesg or reason, "reason": re.sub(r"\W+", "_", reason.lower())}).encode()
    head = f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
    util.write_nonblock(sock, f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)


# gunicorn writes those answers with util.write_error and has no setting for their format. This file
# runs in the master before the workers fork, so they all inherit the replacement.
util.write_error = _write_json_error


def post_fork(server, worker):
    # Read by Settings.intra_op_threads() (the worker's share of the cores) when it loads its models.
    os.environ["FACEREC_WORKERS"] = str(server.cfg.workers)
    memory.start_trimming(_settings.malloc_trim_s)  # read in the master, whose environment the worker has


def post_worker_init(worker):
    # The app, its models and every import now live as long as the worker: frozen, the collector's
    # full passes walk only what requests leave behind, not all of them (~50 ms a pass, mid-request).
    gc.freeze()


# Prometheus multiprocess mode: the workers write their metrics to files in one folder and
# /metrics sums them. The variable must be set before a worker imports prometheus_client, so it is
# set here, in the master, before the first fork (this project does not use --preload).
_METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_created_metrics_dir = None


def on_starting(server):
    """Give this gunicorn instance an empty metrics folder: its own temporary one unless set."""
    global _created_metrics_dir
    directory = os.environ.get(_METRICS_DIR_ENV)
    if directory:
        for stale in glob.glob(os.path.join(directory, "*.db")):  # a previous run's counts
            os.remove(stale)
    else:
        _created_metrics_dir = tempfile.mkdtemp(prefix="facerec-metrics-")
        os.environ[_METRICS_DIR_ENV] = _created_metrics_dir
        # Also when the master exits without on_exit (a port in use, a worker that cannot boot): the
        # folder was left in /tmp. Workers inherit the handler and must not run it.
        master = os.getpid()
        atexit.register(lambda: os.getpid() == master and shutil.rmtree(_created_metrics_dir, ignore_errors=True))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # its live gauges; its counters keep counting in the sums
