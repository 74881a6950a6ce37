"""Enrol many photos through the HTTP API, in parallel, resumably.

    .venv/bin/python scripts/bulk_enrol.py PHOTOS_DIR            # PHOTOS_DIR/<person id>/<photo>.jpg
    .venv/bin/python scripts/bulk_enrol.py --csv people.csv      # columns id,name,path[,metadata]

Every photo is appended with POST /samples, so a person keeps all their photos, under a photo id
derived from the person's id and the photo's path: sending a photo again replaces it, never
duplicates it. Each photo's outcome (stored, or refused by the service with a reason) is written
to --state-file at once; rerun the same command after an interruption and the stored ones are
skipped, the refused ones sent again (fixed or not: the exit status says whether all are stored).
Connection failures and 5xx answers are retried, then left for the next run.

The URL and key default to FACEREC_URL and FACEREC_API_KEY, as for the `facerec` command.

Exit status: 0 every photo stored, 1 some failed (the summary gives the reasons), 2 the run could
not start (no photo found, a bad argument) or the service refused it (URL or API key wrong), 130
interrupted.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import mimetypes
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import requests
from tqdm import tqdm

DEFAULT_URL = "http://127.0.0.1:6337"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
SHOWN_FAILURES = 50


@dataclass(frozen=True)
class Photo:
    sample_id: str
    name: str
    path: Path
    metadata: str = ""
    source: str = ""  # the path as the input names it: the photo id depends on it, not on the cwd

    @property
    def photo_id(self) -> str:
        # surrogateescape: a file name that is not UTF-8 still names one photo
        return hashlib.sha256(f"{self.sample_id}\0{self.source}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(frozen=True)
class Outcome:
    photo: Photo
    ok: bool
    reason: str = ""
    message: str = ""
    final: bool = True  # False: worth retrying in a later run (the service was unavailable)
    warning: str = ""  # stored, with a remark ("3 faces found; enrolled the largest")


class ServiceRefused(Exception):
    """The service refused the run as a whole (wrong URL, missing or wrong API key)."""


def photos_from_tree(root: Path) -> tuple[list[Photo], list[Path]]:
    """root/<person id>/<photo>: the folder name is the id and the name. Also what is left out:
    files beside the person folders, folders inside them, files without an image suffix."""
    photos, left_out = [], []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            left_out.append(entry)
            continue
        for path in sorted(entry.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                photos.append(Photo(entry.name, entry.name, path, source=path.relative_to(root).as_posix()))
            else:
                left_out.append(path)
    return photos, left_out


def photos_from_csv(table: Path) -> list[Photo]:
    """Rows id,name,path[,metadata]; a relative path is relative to the CSV's folder."""
    with table.open(newline="", encoding="utf-8-sig") as stream:  # -sig: Excel starts its CSVs with a BOM
        reader = csv.DictReader(stream)
        rows = list(reader)
    if not {"id", "path"} <= set(reader.fieldnames or []):
        columns = reader.fieldnames
        raise ValueError(f"{table}: its first line must name the columns id,name,path[,metadata], not {columns}")
    for line, row in enumerate(rows, start=2):
        if not (row.get("id") and row.get("path")):
            raise ValueError(f"{table}, line {line}: 'id' and 'path' are required")
    return [
        Photo(row["id"], row.get("name") or row["id"], table.parent / row["path"], row.get("metadata") or "", source)
        for row in rows
        for source in [_as_from(table.parent, row["path"])]
    ]


def _as_from(folder: Path, path: str) -> str:
    """The path as seen from the CSV's folder, so that one photo has one id however a row spells it
    (a.jpg, ./a.jpg, /the/folder/a.jpg); a plain relative path stays as written."""
    return Path(os.path.relpath(os.path.normpath(folder / path), folder)).as_posix()


class StateFile:
    """One JSON line per finished photo, appended and flushed as soon as it is known, with the URL
    of the service it went to: a photo stored in one service is not skipped when sending to another."""

    def __init__(self, path: Path, url: str):
        self.path = path
        self.url = url
        self._lock = threading.Lock()

    def stored(self) -> set[str]:
        """The photos stored in this service by earlier runs (a refused one stored later counts as stored)."""
        done = set()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut short by the interruption
                if entry["ok"] and entry.get("url", self.url) == self.url:  # lines without one: older runs
                    done.add(entry["key"])
        return done

    def record(self, outcomes: list[Outcome]) -> None:
        lines = [
            json.dumps(
                {"key": key(o.photo), "path": str(o.photo.path), "ok": o.ok, "reason": o.reason, "url": self.url}
            )
            for o in outcomes
            if o.final
        ]
        with self._lock, self.path.open("a", encoding="utf-8") as stream:
            stream.write("".join(line + "\n" for line in lines))


def key(photo: Photo) -> str:
    return f"{photo.sample_id}/{photo.photo_id}"


@dataclass
class Client:
    url: str
    api_key: str
    timeout: float
    retries: int
    _local: threading.local = field(default_factory=threading.local)

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            if self.api_key:
                self._local.session.headers["Authorization"] = f"Bearer {self.api_key}"
        return self._local.session

    def enrol(self, batch: list[Photo]) -> list[Outcome]:
        unreadable, readable, items = [], [], []
        for photo in batch:
            if not _is_utf8(photo.sample_id):
                unreadable.append(Outcome(photo, False, "invalid_id", "the person's id (folder name) is not UTF-8"))
                continue
            try:
                items.append(_item(photo))
                readable.append(photo)
            except OSError as error:
                unreadable.append(Outcome(photo, False, "unreadable_file", error.strerror or str(error)))
        return unreadable + (self._send(readable, items) if items else [])

    def _send(self, photos: list[Photo], items: list[dict]) -> list[Outcome]:
        response, problem = self._post(items)
        if response is None:
            return [Outcome(photo, False, "service_unavailable", problem, final=False) for photo in photos]
        if response.status_code == 413 and len(items) > 1:  # over the body size or FACEREC_MAX_SAMPLES: halves
            half = len(items) // 2
            return self._send(photos[:half], items[:half]) + self._send(photos[half:], items[half:])
        return _outcomes(photos, response)

    def _post(self, items: list[dict]) -> tuple[requests.Response | None, str]:
        """The service's answer; or None, and what the last try met, when it stayed unavailable
        through every retry (waiting as long as its Retry-After asks, up to a minute)."""
        problem, asked_wait = "", 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(60.0, max(asked_wait, 0.5 * 2**attempt)))
            try:
                response = self._session().post(self.url + "/samples", json=items, timeout=self.timeout)
            except requests.RequestException as error:
                problem, asked_wait = f"no answer ({type(error).__name__})", 0.0
                continue
            if response.status_code in (401, 403, 404, 405):
                raise ServiceRefused(f"POST {self.url}/samples answered {response.status_code}: {response.text[:200]}")
            if response.status_code not in TRANSIENT_STATUSES:
                return response, ""
            problem, asked_wait = _unavailability(response), _retry_after(response)
        return None, problem


def _unavailability(response: requests.Response) -> str:
    try:
        reason = response.json().get("reason", "")
    except (ValueError, AttributeError):
        reason = ""
    return f"HTTP {response.status_code} {reason or response.reason}"


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else 0.0


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a name read from the file system with surrogate escapes
        return False
    return True


def _item(photo: Photo) -> dict:
    mime = mimetypes.guess_type(photo.path.name)[0] or "image/jpeg"
    image = f"data:{mime};base64," + base64.b64encode(photo.path.read_bytes()).decode("ascii")
    fields = {"id": photo.sample_id, "name": photo.name, "metadata": photo.metadata}
    return {**fields, "photo_id": photo.photo_id, "image": image}


def _outcomes(batch: list[Photo], response: requests.Response) -> list[Outcome]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        reason, message = body.get("reason", f"http_{response.status_code}"), body.get("error", response.text[:200])
        return [Outcome(photo, False, reason, message) for photo in batch]
    if not isinstance(body, dict) or not isinstance(body.get("photos"), list):
        raise ServiceRefused(f"POST {response.url} answered 200 without an enrolment report: is it face_detection?")
    stored = {entry["photo_id"] for entry in body["photos"]}
    errors = {entry.get("photo_id"): entry for entry in body.get("errors", [])}
    warnings = {entry.get("photo_id"): entry["message"] for entry in body.get("warnings", [])}
    outcomes = []
    for photo in batch:
        if photo.photo_id in stored:
            outcomes.append(Outcome(photo, True, warning=warnings.get(photo.photo_id, "")))
            continue
        error = errors.get(photo.photo_id, {"reason": "not_reported", "message": "absent from the answer"})
        outcomes.append(Outcome(photo, False, error["reason"], error["message"]))
    return outcomes


def batches(photos: list[Photo], size: int) -> Iterator[list[Photo]]:
    for start in range(0, len(photos), size):
        yield photos[start : start + size]


@dataclass
class Summary:
    already_done: int
    stored: int = 0
    failed: list[Outcome] = field(default_factory=list)
    warned: list[Outcome] = field(default_factory=list)
    unavailable: Counter = field(default_factory=Counter)  # what the last try met, per photo left unsent
    interrupted: bool = False

    def add(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.warning:
                self.warned.append(outcome)
            if outcome.ok:
                self.stored += 1
            elif outcome.final:
                self.failed.append(outcome)
            else:
                self.unavailable[outcome.message] += 1

    def print(self, stream) -> None:
        done = f"stored {self.stored}, failed {len(self.failed)}, skipped {self.already_done} stored before"
        print(done, file=stream)
        reasons = Counter(outcome.reason for outcome in self.failed)
        for reason, count in reasons.most_common():
            print(f"  {reason}: {count}", file=stream)
        for outcome in self.failed[:SHOWN_FAILURES]:
            print(f"  FAILED {outcome.photo.path}: {outcome.reason} ({outcome.message})", file=stream)
        if len(self.failed) > SHOWN_FAILURES:
            print(f"  ... and {len(self.failed) - SHOWN_FAILURES} more, all in the state file", file=stream)
        for outcome in self.warned[:SHOWN_FAILURES]:
            print(f"  stored with a warning {outcome.photo.path}: {outcome.warning}", file=stream)
        if len(self.warned) > SHOWN_FAILURES:
            print(f"  ... and {len(self.warned) - SHOWN_FAILURES} more stored with a warning", file=stream)
        if self.unavailable:
            met = ", ".join(f"{problem}: {count}" for problem, count in self.unavailable.most_common())
            total = sum(self.unavailable.values())
            print(f"{total} not sent (service unavailable; {met}): rerun the same command", file=stream)
        if self.interrupted:
            print("interrupted: rerun the same command to go on where it stopped", file=stream)

    @property
    def exit_status(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed or self.unavailable else 0


def run(photos: list[Photo], client: Client, state: StateFile, workers: int, batch_size: int) -> Summary:
    done = state.stored()
    todo = [photo for photo in photos if key(photo) not in done]
    summary = Summary(already_done=len(photos) - len(todo))
    with tqdm(total=len(todo), unit="photo", file=sys.stderr) as progress:
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [pool.submit(client.enrol, batch) for batch in batches(todo, batch_size)]
            for future in as_completed(futures):
                outcomes = future.result()
                state.record(outcomes)
                summary.add(outcomes)
                progress.update(len(outcomes))
        except KeyboardInterrupt:
            # Requests in flight may still be stored; their photos are sent again next time,
            # which replaces them (same photo id) rather than adding duplicates.
            summary.interrupted = True
        finally:
            pool.shutdown(wait=not summary.interrupted, cancel_futures=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, help="folder of <person id>/<photo> files")
    parser.add_argument("--csv", type=Path, help="CSV with columns id,name,path[,metadata] instead of a folder")
    parser.add_argument(
        "--url", default=os.environ.get("FACEREC_URL", DEFAULT_URL), help=f"env FACEREC_URL; {DEFAULT_URL}"
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("FACEREC_API_KEY", ""), help="env FACEREC_API_KEY: a client or admin key"
    )
    parser.add_argument("--workers", type=int, default=4, help="requests in flight at once")
    parser.add_argument("--batch", type=int, default=8, help="photos per request")
    parser.add_argument("--state-file", type=Path, default=Path("bulk_enrol.state.jsonl"), help="progress record")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=3, help="retries when the service is unavailable")
    args = parser.parse_args(argv)
    _check(parser, args)
    left_out: list[Path] = []
    try:
        photos, left_out = photos_from_tree(args.folder) if args.folder else (photos_from_csv(args.csv), [])
    except (OSError, ValueError, KeyError) as error:
        parser.error(str(error))
    for path in left_out[:SHOWN_FAILURES]:
        print(f"left out, not a <person id>/<photo> image: {path}", file=sys.stderr)
    if len(left_out) > SHOWN_FAILURES:
        print(f"... and {len(left_out) - SHOWN_FAILURES} more left out", file=sys.stderr)
    if not photos:
        parser.error(f"no photos in {args.folder or args.csv}: expected <person id>/<photo>.jpg files or CSV rows")
    unique = list({key(photo): photo for photo in photos}.values())
    if len(unique) < len(photos):
        print(f"{len(photos) - len(unique)} rows name a photo of a row before them: sent once", file=sys.stderr)
        photos = unique
    print(f"{len(photos)} photos for {args.url}", file=sys.stderr)
    client = Client(args.url.rstrip("/"), args.api_key, args.timeout, args.retries)
    try:
        summary = run(photos, client, StateFile(args.state_file, client.url), args.workers, args.batch)
    except ServiceRefused as error:
        print(f"stopped: {error}", file=sys.stderr)
        return 2
    summary.print(sys.stdout)
    if summary.interrupted:
        # Not waiting for the requests in flight: a service that does not answer held Ctrl-C for
        # their whole timeout. Each outcome is already in the state file (written when it came).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(summary.exit_status)
    return summary.exit_status


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.folder is None and args.csv is None:
        parser.error("give a folder of <person id>/<photo> files, or --csv")
    if args.folder is not None and args.csv is not None:
        parser.error("give a folder or --csv, not both")
    if args.workers < 1 or args.batch < 1 or args.retries < 0 or not args.timeout > 0:
        parser.error("--workers and --batch must be at least 1, --retries at least 0, --timeout above 0")
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"--url must start with http:// or https://, not {args.url!r}")
    try:
        args.state_file.open("a").close()  # now, not after the first batch is stored
    except OSError as error:
        parser.error(f"cannot write the state file {args.state_file}: {error.strerror}")


if __name__ == "__main__":
    sys.exit(main())
