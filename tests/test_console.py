"""The web console end to end in headless Chromium (Debian's package), driven by Playwright.

Never `playwright install`: it downloads a browser. Without /usr/bin/chromium the tests skip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.conftest import ADMIN_KEY, CLIENT_KEY, PACKAGE_PHOTOS, data_uri

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KNOWN_GREEN = (22, 163, 74)  # --known in console.css
UNKNOWN_AMBER = (245, 158, 11)  # --unknown
YAO = PACKAGE_PHOTOS / "yaoming.jpg"
PLAYERS = PACKAGE_PHOTOS / "players.jpg"

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)", allow_module_level=True
    )
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements_dev.txt)")
expect = playwright.expect
expect.set_options(timeout=60_000)  # recognition on a busy CPU takes seconds


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    yield context.new_page()
    context.close()


def use_key(page, key: str) -> None:
    page.fill("#api-key", key)
    page.press("#api-key", "Enter")


def upload(page, photo: Path, faces: list[dict]) -> None:
    page.set_input_files("#photo-input", str(photo))
    known = sum(face["matched"] for face in faces)
    expect(page.locator("#status")).to_have_text(f"{len(faces)} face(s) found, {known} recognised.")


def enrol_face(page, index: int, name: str) -> None:
    page.locator(f'.face[data-index="{index}"]').click()
    expect(page.locator("#enrol-form")).to_be_visible()
    page.fill("#enrol-name", name)
    page.click("#enrol-form button[type=submit]")
    expect(page.locator("#enrol-form")).to_be_hidden()
    expect(page.locator(f'.face[data-index="{index}"]')).to_have_class(re.compile(r"\bknown\b"))


def recognise(url: str, photo: Path) -> list[dict]:
    response = requests.post(
        url + "/face-recognition", json={"image": data_uri(photo)}, headers={"X-API-Key": CLIENT_KEY}, timeout=120
    )
    return response.json()


def expected_box(page, bbox: str) -> dict:
    """Where the console should draw a face's box, in page pixels."""
    photo = page.locator("#photo").bounding_box()
    natural_width, natural_height = page.eval_on_selector("#photo", "img => [img.naturalWidth, img.naturalHeight]")
    x, y, w, h = (int(v) for v in bbox.split(", "))
    scale_x, scale_y = photo["width"] / natural_width, photo["height"] / natural_height
    return {"x": photo["x"] + x * scale_x, "y": photo["y"] + y * scale_y, "width": w * scale_x, "height": h * scale_y}


def assert_near(actual: dict, expected: dict, tolerance: float = 1.5) -> None:
    assert all(abs(actual[k] - expected[k]) <= tolerance for k in expected), (actual, expected)


def colour_near(pixel: tuple, colour: tuple, tolerance: int = 12) -> bool:
    return all(abs(p - c) <= tolerance for p, c in zip(pixel[:3], colour, strict=True))


def test_recognise_enrol_by_clicking_and_delete(page, secured_api, work_dir):
    errors = []
    page.on("pageerror", lambda error: errors.append(error))  # a builtin is not accepted as a handler
    page.goto(secured_api + "/console")
    expect(page.locator("#samples-status")).to_contain_text("an API key is required")
    use_key(page, CLIENT_KEY)
    expect(page.locator("#samples-status")).to_have_text("No sample enrolled.")

    # a face alone: click it, name it, and it is recognised
    upload(page, YAO, recognise(secured_api, YAO))
    expect(page.locator(".face.unknown")).to_have_count(1)
    enrol_face(page, 0, "Yao Ming")
    expect(page.locator(".face.known .label")).to_have_text(re.compile(r"^Yao Ming \d\.\d\d$"))
    expect(page.locator("#sample-table tbody tr")).to_have_count(1)
    expect(page.locator("#sample-table tbody tr td").nth(0)).to_have_text("yao_ming")

    # among ~20 players: every face boxed where the API says, Yao Ming named
    faces = recognise(secured_api, PLAYERS)
    upload(page, PLAYERS, faces)
    [yao_index] = [i for i, face in enumerate(faces) if face["id"] == "yao_ming"]
    expect(page.locator(".face")).to_have_count(len(faces))
    expect(page.locator(".face.known")).to_have_count(1)
    yao_box = page.locator(f'.face[data-index="{yao_index}"]')
    expect(yao_box.locator(".label")).to_have_text(f"Yao Ming {faces[yao_index]['similarity']:.2f}")
    for index, face in enumerate(faces):
        assert_near(page.locator(f'.face[data-index="{index}"]').bounding_box(), expected_box(page, face["bbox"]))

    # a player of the group photo, enrolled by clicking his face
    player_index = max(
        (i for i, face in enumerate(faces) if not face["matched"]), key=lambda i: int(faces[i]["bbox"].split(", ")[2])
    )
    enrol_face(page, player_index, "Player One")
    expect(page.locator(f'.face[data-index="{player_index}"] .label')).to_have_text(re.compile(r"^Player One "))
    expect(page.locator(".face.known")).to_have_count(2)
    expect(page.locator("#sample-table tbody tr")).to_have_count(2)

    screenshot = work_dir / "console.png"
    page.screenshot(path=str(screenshot))
    assert_boxes_drawn(screenshot, yao_box.bounding_box(), page.locator(".face.unknown").first.bounding_box())

    # deleting needs an admin key; the console says so, then deletes with one
    delete = page.locator('#sample-table tr[data-id="yao_ming"] button.delete')
    delete.click()
    expect(delete).to_have_text("Really delete?")
    delete.click()
    expect(page.locator("#samples-status")).to_contain_text("needs an admin key")
    use_key(page, ADMIN_KEY)
    expect(delete).to_have_text("Delete")  # the list is drawn again
    delete.click()
    delete.click()
    expect(page.locator("#sample-table tbody tr")).to_have_count(1)
    expect(page.locator(".face.known")).to_have_count(1)  # recognised again: Yao Ming is gone
    listed = requests.get(secured_api + "/samples", headers={"X-API-Key": ADMIN_KEY}, timeout=30).json()
    assert [sample["id"] for sample in listed["samples"]] == ["player_one"]
    assert errors == []


def assert_boxes_drawn(screenshot: Path, known: dict, unknown: dict) -> None:
    """The screenshot's pixels: a green border around Yao Ming, the photo inside, an amber border elsewhere."""
    pixels = Image.open(screenshot).convert("RGB")
    left_border = (int(known["x"]) + 1, int(known["y"] + known["height"] / 2))
    assert colour_near(pixels.getpixel(left_border), KNOWN_GREEN), pixels.getpixel(left_border)
    label = (int(known["x"]) + 2, int(known["y"]) - 4)
    assert colour_near(pixels.getpixel(label), KNOWN_GREEN), pixels.getpixel(label)
    centre = (int(known["x"] + known["width"] / 2), int(known["y"] + known["height"] / 2))
    assert not colour_near(pixels.getpixel(centre), KNOWN_GREEN, 40)
    unknown_border = (int(unknown["x"] + unknown["width"] / 2), int(unknown["y"]) + 1)
    assert colour_near(pixels.getpixel(unknown_border), UNKNOWN_AMBER), pixels.getpixel(unknown_border)


def test_the_key_lasts_for_the_browser_session_only(browser, page, secured_api):
    page.goto(secured_api + "/console")
    use_key(page, CLIENT_KEY)
    expect(page.locator("#samples-status")).to_have_text("No sample enrolled.")
    page.reload()
    expect(page.locator("#api-key")).to_have_value(CLIENT_KEY)
    other_session = browser.new_context().new_page()
    other_session.goto(secured_api + "/console")
    expect(other_session.locator("#api-key")).to_have_value("")
    other_session.context.close()


def test_console_files_are_public_and_locked_down(secured_api):
    page = requests.get(secured_api + "/console/", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert requests.get(secured_api + "/console/console.js", timeout=30).status_code == 200
    missing = requests.get(secured_api + "/console/nothing.js", timeout=30)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/json"
    assert requests.get(secured_api + "/console/..%2fapp.py", timeout=30).status_code == 404
    assert requests.get(secured_api + "/static/console/index.html", timeout=30).status_code == 404  # no way round
    moved = requests.get(secured_api + "/console", allow_redirects=False, timeout=30)
    assert moved.status_code == 308 and moved.headers["Content-Type"] == "application/json"
    assert moved.json()["location"] == moved.headers["Location"] and moved.headers["Location"].endswith("/console/")
