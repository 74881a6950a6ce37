"""gunicorn settings shared by both services; each service's gunicorn.conf.py imports them.

Command-line flags (-w, -b, ...) override everything here, as in the original README.
Threads: each worker serves several requests at once (gthread), while its models use
cores / workers intra-op threads, so the two cores are neither idle nor oversubscribed.
"""

import os

worker_class = "gthread"
threads = int(os.environ.get("FACEREC_GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("FACEREC_GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 30
control_socket_disable = True  # two services on one host would fight over the default socket path


def post_fork(server, worker):
    # Read by Settings.intra_op_threads() when the worker loads its models.
    os.environ["FACEREC_WORKERS"] = str(server.cfg.workers)
