"""The `facerec` command: enrol, recognise, verify, detect, list and delete against a face_detection service.

Exit status: 0 done (verify: the same person), 1 verify: not the same person, 2 bad usage (a photo
that cannot be read, an output that cannot be written), 3 the service answered an error or could
not be reached.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facerec_client.client import DEFAULT_URL, FaceRecClient, FaceRecError

OK, NOT_SAME_PERSON, BAD_USAGE, SERVICE_ERROR = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a terminal whose encoding lacks a name's letters
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        answer, status = args.command(FaceRecClient(args.url, args.api_key, args.timeout), args)
    except FaceRecError as error:
        print(f"error: {error}", file=sys.stderr)
        return SERVICE_ERROR
    except OSError as error:  # a local file: never exit 1, which says "not the same person"
        print(f"error: {error.strerror or error}: {error.filename or ''}", file=sys.stderr)
        return BAD_USAGE
    except ValueError as error:  # a URL, key, timeout or number that no answer could fix
        print(f"error: {error}", file=sys.stderr)
        return BAD_USAGE
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        print(args.describe(answer), file=sys.stderr if status == SERVICE_ERROR else sys.stdout)
    return status


# --- subcommands: each returns (the service's answer, exit status) ------------------------------


def _enroll(client: FaceRecClient, args: argparse.Namespace) -> tuple[dict, int]:
    fields = {"name": args.name, "metadata": args.metadata, "action": args.action}
    report = client.enroll(args.id, args.image, **fields, append=args.append)
    return report, OK if args.id in report["success"] else SERVICE_ERROR


def _recognize(client: FaceRecClient, args: argparse.Namespace) -> tuple[list, int]:
    faces = client.recognize(args.image, args.min_similarity, args.top_k)
    if args.annotate:
        args.annotate.write_bytes(client.annotate(args.image, args.min_similarity))
    return faces, OK


def _verify(client: FaceRecClient, args: argparse.Namespace) -> tuple[dict, int]:
    answer = client.verify(args.image, args.image2, args.id, args.threshold)
    return answer, OK if answer["match"] else NOT_SAME_PERSON


def _detect(client: FaceRecClient, args: argparse.Namespace) -> tuple[list, int]:
    return client.detect(args.image), OK


def _list(client: FaceRecClient, args: argparse.Namespace) -> tuple[dict, int]:
    return client.list_samples(args.offset, args.limit, args.id, args.name, args.after), OK


def _delete(client: FaceRecClient, args: argparse.Namespace) -> tuple[dict, int]:
    return client.delete_sample(args.id, args.photo), OK


# --- human-readable output -----------------------------------------------------------------------


def _describe_enrolment(report: dict) -> str:
    lines = [f"enrolled {sample_id}" for sample_id in report["success"]]
    lines += [f"failed {e['id']}: {e['message']} ({e['reason']})" for e in report.get("errors", [])]
    lines += [f"warning {w['id']}: {w['message']}" for w in report.get("warnings", [])]
    return "\n".join(lines)


def _describe_faces(faces: list[dict]) -> str:
    if not faces:
        return "no face found"
    lines = []
    for face in faces:
        who = f"{face['name'] or face['id']} (id {face['id']})" if face["matched"] else "unknown"
        similarity = "-" if face["similarity"] is None else f"{face['similarity']:.3f}"
        lines.append(f"{face['bbox']:>22}  {who}  similarity {similarity}")
        lines += [
            f"{'':>24}candidate {c['name'] or c['id']} (id {c['id']}) {c['similarity']:.3f}"
            for c in face.get("candidates", [])
        ]
    return "\n".join(lines)


def _describe_verification(answer: dict) -> str:
    verdict = "same person" if answer["match"] else "not the same person"
    return f"{verdict}: similarity {answer['similarity']:.3f}, threshold {answer['threshold']:.2f}"


def _describe_detections(faces: list[dict]) -> str:
    return "\n".join(f"{f['bbox']:>22}  score {f['score']:.3f}" for f in faces) or "no face found"


def _describe_page(page: dict) -> str:
    lines = [f"{s['id']}\t{s['name']}\t{s.get('photo_id', '')}\t{s.get('created_at', '')}" for s in page["samples"]]
    if page["offset"] is None:  # a page after a cursor: neither its place nor the total is counted
        shown = f"samples: {len(page['samples'])} more"
    elif page["samples"]:
        shown = f"samples {page['offset'] + 1}-{page['offset'] + len(page['samples'])} of {page['total']}"
    else:
        shown = f"samples: none of {page['total']}"
    more = f"; next page: the same command with --after {page['next']}" if page.get("next") else ""
    return "\n".join([*lines, shown + more])


def _describe_deletion(answer: dict) -> str:
    return json.dumps(answer, ensure_ascii=False)


# --- arguments -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facerec", description="Client of the face_detection service.")
    _add_connection_options(parser, defaults=True)
    commands = parser.add_subparsers(required=True, metavar="command")

    enroll = _command(
        commands,
        "enroll",
        "enrol a sample from a photo's largest face: it replaces the id's photos, unless --append",
        _enroll,
        _describe_enrolment,
    )
    enroll.add_argument("id")
    enroll.add_argument("image", type=Path)
    enroll.add_argument("--append", action="store_true", help="add the photo to the id's photos (POST /samples)")
    enroll.add_argument("--name", default="")
    enroll.add_argument("--metadata", default="")
    enroll.add_argument("--action", default="")

    recognize = _command(commands, "recognize", "find and name every face of a photo", _recognize, _describe_faces)
    recognize.add_argument("image", type=Path)
    recognize.add_argument("--min-similarity", type=float, help="the README's min_distance")
    recognize.add_argument("--top-k", type=int, help="also list each face's k most similar samples (1-10)")
    recognize.add_argument("--annotate", type=Path, metavar="OUT.jpg", help="also save the photo, faces boxed")

    verify = _command(
        commands, "verify", "same person? two photos, or a photo and --id", _verify, _describe_verification
    )
    verify.add_argument("image", type=Path)
    other = verify.add_mutually_exclusive_group(required=True)
    other.add_argument("image2", type=Path, nargs="?")
    other.add_argument("--id", help="compare with this enrolled sample instead of a second photo")
    verify.add_argument("--threshold", type=float)

    detect = _command(commands, "detect", "boxes, scores and landmarks only", _detect, _describe_detections)
    detect.add_argument("image", type=Path)

    listing = _command(commands, "list", "list enrolled samples", _list, _describe_page)
    pages = listing.add_mutually_exclusive_group()
    pages.add_argument("--offset", type=int)
    pages.add_argument("--after", metavar="CURSOR", help="the cursor a page ends with (stable under writes)")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--id", help="only this sample id")
    listing.add_argument("--name", help="filter by name")

    delete = _command(
        commands, "delete", "delete a sample (admin key), or one photo of it", _delete, _describe_deletion
    )
    delete.add_argument("id")
    delete.add_argument("--photo", help="delete only this photo id of the sample")
    return parser


def _command(
    commands: argparse._SubParsersAction, name: str, help_text: str, run: Callable, describe: Callable[[Any], str]
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text, description=help_text)
    command.set_defaults(command=run, describe=describe)
    _add_connection_options(command, defaults=False)
    return command


def _add_connection_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """On the main parser with defaults; again on each subcommand (without), so they go before or after it."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url", default=default(os.environ.get("FACEREC_URL", DEFAULT_URL)), help="env FACEREC_URL; " + DEFAULT_URL
    )
    parser.add_argument("--api-key", default=default(os.environ.get("FACEREC_API_KEY", "")), help="env FACEREC_API_KEY")
    parser.add_argument("--timeout", type=float, default=default(60.0), help="seconds per request")
    parser.add_argument("--json", action="store_true", default=default(False), help="print the JSON answer")
