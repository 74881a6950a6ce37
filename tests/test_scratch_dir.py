"""The test and benchmark harness leaves no database cluster behind (each is ~400 MB)."""

from __future__ import annotations

import shutil

import pytest

from tests.servers import scratch_dir


def populate(path):
    (path / "pgdata" / "base").mkdir(parents=True)
    (path / "pgdata" / "base" / "16384").write_bytes(b"\0" * 1024)
    (path / "pgdata" / "postgresql.log").write_text("server log")
    (path / "face_detection.log").write_text("service log")
    (path / "weights.pt").write_bytes(b"\0" * 1024)
    (path / "console.png").write_bytes(b"\x89PNG")


def test_removed_afterwards():
    with scratch_dir("facerec-scratch-") as path:
        populate(path)
        assert oct(path.stat().st_mode & 0o777) == "0o755"  # the embedded server's own user reads it
    assert not path.exists()


def test_removed_after_an_error():
    with pytest.raises(RuntimeError), scratch_dir("facerec-scratch-") as path:
        populate(path)
        raise RuntimeError("a failing benchmark")
    assert not path.exists()


def test_keeps_only_the_logs_and_screenshots_when_asked(capsys):
    with scratch_dir("facerec-scratch-", keep_logs=lambda: True) as path:
        populate(path)
    try:
        kept = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
        assert kept == ["console.png", "face_detection.log", "pgdata", "pgdata/postgresql.log"]
        assert str(path) in capsys.readouterr().err
    finally:
        shutil.rmtree(path)
