"""The try-it page in a real browser: Debian's Chromium driven by Playwright, against the
real service on a loopback port. Each test saves a screenshot under $SCREENSHOT_DIR
(default: test-screenshots/), which CI prints."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx2
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ROOT, running_service

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "test-screenshots"))
KEY = "page-test-key"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def open_url(model_dir: Path) -> Iterator[str]:
    with running_service(MODEL_DIR=str(model_dir)) as (url, _):
        yield url


@pytest.fixture(scope="module")
def keyed_url(model_dir: Path) -> Iterator[str]:
    with running_service(MODEL_DIR=str(model_dir), API_KEYS=KEY) as (url, _):
        yield url


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
    context.close()


def black_mug(test_photos) -> Path:
    return next(photo for photo, label in test_photos if label == 1)


def percentages(page: Page) -> list[float]:
    return [float(v.rstrip("%")) for v in page.locator("#bars .value").all_inner_texts()]


def test_page_loads_without_console_errors_and_shows_the_version(page: Page, open_url: str) -> None:
    page.goto(open_url)
    expect(page.get_by_role("heading", name="Which mug is it?")).to_be_visible()
    version = httpx2.get(f"{open_url}/health").json()["model_version"]
    expect(page.locator("#model-version")).to_have_text(version)
    expect(page.locator("#key-row")).to_be_hidden()
    assert page.console_errors == []


def test_black_mug_photo_shows_black_with_four_sorted_bars(
    page: Page, open_url: str, test_photos
) -> None:
    page.goto(open_url)
    page.set_input_files("#photo", black_mug(test_photos))
    expect(page.locator("#verdict strong")).to_have_text("black")
    expect(page.locator("#bars li")).to_have_count(4)
    values = percentages(page)
    assert values == sorted(values, reverse=True)
    assert abs(sum(values) - 100) < 0.5
    labels = page.locator("#bars li .name").all_text_contents()
    assert sorted(labels) == ["black", "blue", "transparent", "white"] and labels[0] == "black"
    expect(page.locator("#preview")).to_be_visible()
    # Each bar is drawn as wide as its share of the track.
    for item, value in zip(page.locator("#bars li").all(), values, strict=True):
        track = item.locator(".track").bounding_box()
        fill = item.locator(".fill").bounding_box()
        assert abs(fill["width"] - track["width"] * value / 100) <= 2
    assert page.console_errors == []


def test_text_file_shows_the_api_error_and_a_second_photo_replaces_it(
    page: Page, open_url: str, test_photos, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    page.goto(open_url)
    page.set_input_files("#photo", text)
    expect(page.get_by_role("alert")).to_contain_text("not a recognisable image")
    expect(page.locator("#result")).to_be_hidden()
    page.set_input_files("#photo", black_mug(test_photos))
    expect(page.locator("#verdict strong")).to_have_text("black")
    expect(page.get_by_role("alert")).to_be_hidden()


def test_non_mug_photo_is_said_to_be_none_of_the_four_with_muted_bars(
    page: Page, open_url: str, test_photos, tmp_path: Path
) -> None:
    y, x = np.mgrid[0:480, 0:480] // 40
    board = tmp_path / "checkerboard.png"
    Image.fromarray(np.where((x + y) % 2 == 0, 255, 0).astype(np.uint8)).save(board)
    page.goto(open_url)
    page.set_input_files("#photo", board)
    expect(page.locator("#verdict")).to_contain_text(
        "This photo does not look like any of: white, black, blue, transparent."
    )
    expect(page.locator("#bars li")).to_have_count(4)
    expect(page.locator("#bars")).to_have_class(re.compile(r"\bmuted\b"))
    page.screenshot(path=SCREENSHOTS / "non-mug-photo-unknown.png", full_page=True)
    # A mug photo afterwards is named again, its bars no longer muted.
    page.set_input_files("#photo", black_mug(test_photos))
    expect(page.locator("#verdict strong")).to_have_text("black")
    expect(page.locator("#bars")).not_to_have_class(re.compile(r"\bmuted\b"))
    assert page.console_errors == []


def test_keyboard_alone_reaches_the_file_picker(page: Page, open_url: str) -> None:
    # The waiter is armed before navigation: Playwright turns on Chromium's file-chooser
    # interception asynchronously, and armed after load it missed about one dialog in four.
    with page.expect_file_chooser() as chooser:
        page.goto(open_url)
        page.keyboard.press("Tab")  # the first stop is the drop zone
        page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "drop-zone"
    assert chooser.value.element.get_attribute("accept") == "image/*"


def test_required_key_is_asked_for_refused_when_missing_and_accepted(
    page: Page, keyed_url: str, test_photos
) -> None:
    page.goto(keyed_url)
    expect(page.get_by_label("API key")).to_be_visible()
    page.set_input_files("#photo", black_mug(test_photos))
    expect(page.get_by_role("alert")).to_contain_text("missing or invalid API key")
    page.get_by_label("API key").fill(KEY)
    page.set_input_files("#photo", black_mug(test_photos))
    expect(page.locator("#verdict strong")).to_have_text("black")
    assert page.evaluate("sessionStorage.getItem('mug-classifier-api-key')") == KEY


def test_phone_width_needs_no_horizontal_scrolling(
    browser: Browser, open_url: str, test_photos, request: pytest.FixtureRequest
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(open_url)
    page.set_input_files("#photo", black_mug(test_photos))
    expect(page.locator("#verdict strong")).to_have_text("black")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390
    for selector in ("#drop-zone", "#verdict", "#bars", "footer"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
    context.close()


def test_heatmap_overlays_the_photo_and_the_toggle_hides_it(
    browser: Browser, open_url: str, test_photos, request: pytest.FixtureRequest
) -> None:
    """The overlay covers the photo's square, shows the model's 8x8 heatmap (its strongest
    cell drawn warm), and the toggle hides and shows it; readable at phone width too."""
    photo = black_mug(test_photos)
    expected = httpx2.post(f"{open_url}/explain", files={"image": photo.read_bytes()}).json()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1024, 800), (375, 740)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.goto(open_url)
        page.set_input_files("#photo", photo)
        expect(page.locator("#verdict strong")).to_have_text("black")
        overlay, image = page.locator("#heatmap"), page.locator("#preview")
        expect(overlay).to_be_visible()
        box, photo_box = overlay.bounding_box(), image.bounding_box()
        assert abs(box["width"] - photo_box["width"]) <= 1
        assert abs(box["height"] - photo_box["height"]) <= 1 and box["width"] >= 100
        assert box["x"] + box["width"] <= width  # nothing off-screen at phone width
        # The canvas holds the heatmap the API gave: the hottest cell is the reddest.
        peak_row, peak_col = max(
            ((r, c) for r in range(8) for c in range(8)),
            key=lambda rc: expected["heatmap"][rc[0]][rc[1]],
        )
        hottest = page.evaluate(
            f"Array.from(document.getElementById('heatmap').getContext('2d')"
            f".getImageData({peak_col}, {peak_row}, 1, 1).data)"
        )
        assert hottest[0] == 255 and hottest[2] < 40  # red, little blue: where it looked
        page.screenshot(path=SCREENSHOTS / f"{request.node.name}-{width}px.png", full_page=True)
        page.get_by_label("Show where the model looked").uncheck()
        expect(overlay).to_be_hidden()
        page.get_by_label("Show where the model looked").check()
        expect(overlay).to_be_visible()
        context.close()


def test_a_model_of_seven_other_classes_gets_its_own_page(
    page: Page, seven_class_model: Path, seven_class_data: Path
) -> None:
    """The page follows the model folder: its title, and a bar for each of its labels."""
    from tests.datasets import SEVEN_CLASSES

    picture = next((seven_class_data / "0_red circle").iterdir())
    with running_service(MODEL_DIR=str(seven_class_model)) as (url, _):
        page.goto(url)
        expect(page.get_by_role("heading", name="Which shape is it?")).to_be_visible()
        page.set_input_files("#photo", picture)
        expect(page.locator("#bars li")).to_have_count(7)
        names = page.locator("#bars li .name").all_text_contents()
        assert sorted(names) == sorted(SEVEN_CLASSES)
        answer = page.locator("#verdict strong").text_content()
        assert answer in SEVEN_CLASSES or answer.startswith("This photo does not look like")
    assert page.console_errors == []


def test_wrong_answers_can_be_corrected_when_the_log_is_on(
    page: Page, model_dir: Path, test_photos, tmp_path: Path
) -> None:
    """With PREDICTION_LOG set, the page offers "Wrong? It is ...", says the photo will be
    kept, and sends the correction to /feedback; without it, it offers nothing."""
    log = tmp_path / "log"
    env = {"PREDICTION_LOG": str(log), "PREDICTION_LOG_FLUSH_S": "0.2"}
    with running_service(MODEL_DIR=str(model_dir), **env) as (url, _):
        page.goto(url)
        page.set_input_files("#photo", black_mug(test_photos))
        expect(page.locator("#verdict strong")).to_have_text("black")
        expect(page.locator("#feedback")).to_be_visible()
        expect(page.locator("#feedback .note")).to_contain_text("will be kept")
        options = page.locator("#correct-label option").all_text_contents()
        assert options == ["white", "blue", "transparent", "none of these"]
        page.select_option("#correct-label", "blue")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#feedback-status")).to_have_text("Thank you: kept as blue.")
        page.wait_for_timeout(600)  # a flush
    lines = [
        json.loads(line) for path in log.rglob("*.jsonl") for line in path.read_text().splitlines()
    ]
    assert [(line["kind"], line["label"]) for line in lines] == [("feedback", "blue")]
    assert page.console_errors == []


def test_no_correction_is_offered_without_a_log(page: Page, open_url: str, test_photos) -> None:
    page.goto(open_url)
    page.set_input_files("#photo", black_mug(test_photos))
    expect(page.locator("#verdict strong")).to_have_text("black")
    expect(page.locator("#feedback")).to_be_hidden()


def test_the_footer_leads_to_the_model_report_whose_figures_are_metrics_json(
    page: Page, open_url: str, model_dir: Path
) -> None:
    report = json.loads((model_dir / "metrics.json").read_text())
    evaluation = report["evaluation"]
    page.goto(open_url)
    page.get_by_role("link", name="report").click()
    expect(page).to_have_url(f"{open_url}/model")
    expect(page.get_by_role("heading", name="Per class")).to_be_visible()
    assert float(page.locator("#accuracy").get_attribute("data-value")) == evaluation["accuracy"]
    expect(page.locator("#accuracy")).to_have_text(f"{evaluation['accuracy']:.2%}")
    expect(page.locator("#ece")).to_have_text(f"{evaluation['ece']:.4f}")
    expect(page.locator("#threshold")).to_have_text(f"{report['unknown']['threshold']:.4f}")
    expect(page.locator("#temperature")).to_have_text(f"{report['calibration']['temperature']:.4f}")
    for name, row in evaluation["per_class"].items():
        cells = page.locator(f'#per-class tr[data-class="{name}"] td')
        expect(cells).to_have_text([f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                                    str(row["support"])])  # fmt: skip
    counts = page.locator("#confusion td").all_inner_texts()
    assert [int(c) for c in counts] == [c for row in evaluation["confusion_matrix"] for c in row]
    conditions = page.locator("#conditions tbody tr")
    expect(conditions).to_have_count(len(report["corruptions"]["conditions"]))
    for chart in ("#reliability svg", "#threshold-curve svg"):
        expect(page.locator(chart)).to_be_visible()
    assert page.console_errors == []
