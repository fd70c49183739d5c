"""The page in a real browser (headless Chromium through selenium): upload, wait, read what a user sees.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them when missing) and selenium.
Every wait is explicit and bounded; the screenshots go to the test's tmp folder.
"""

from __future__ import annotations

import argparse
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from nlzoo.cli import main, predict_video

from .conftest import LIMITS, Served

WAIT_S = 60


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail("headless Chromium is missing: `make test` installs Debian's chromium and chromium-driver")
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    binary, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.set_page_load_timeout(WAIT_S)
    try:
        yield chrome
    finally:
        chrome.quit()


def _open(browser: WebDriver, served: Served, tab: str) -> None:
    browser.get(served.url)
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.CSS_SELECTOR, "button[role=tab]"))
    next(b for b in browser.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text.strip() == tab).click()


def _click(browser: WebDriver, text: str) -> None:
    button = next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip() == text)
    WebDriverWait(browser, WAIT_S).until(lambda _: button.is_enabled())
    button.click()


def _upload(browser: WebDriver, selector: str, path: Path) -> None:
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.CSS_SELECTOR, selector))
    browser.find_element(By.CSS_SELECTOR, selector).send_keys(str(path))


def _shown_scores(browser: WebDriver, element_id: str) -> list[tuple[str, float]]:
    meters = browser.find_elements(By.CSS_SELECTOR, f"#{element_id} meter")
    return [(m.get_attribute("aria-label"), float(m.get_attribute("value"))) for m in meters]


def _predict_video_rows(video: Path, model: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, float]]:
    """``nlzoo predict-video``'s table for the page's settings (3x1 views; fp32 where it has --precision)."""
    parser = argparse.ArgumentParser()
    predict_video.add_arguments(parser)
    precision = ["--precision", "fp32"] if "--precision" in parser._option_string_actions else []
    capsys.readouterr()
    assert (
        main(["predict-video", str(video), "--model", str(model), "--views", "3x1", "--device", "cpu", *precision]) == 0
    )
    rows = re.findall(r"│\s*\d+\s*│\s*\d+\s*│\s*(\w+)\s*│\s*([\d.]+)", capsys.readouterr().out)
    return [(name, float(score)) for name, score in rows]


def test_an_uploaded_video_shows_predict_videos_top5_and_the_attention(
    browser: WebDriver, served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _open(browser, served, "Video")
    _upload(browser, "input[type=file]", served.video)
    _click(browser, "Classify")
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#attention img#attention-picture"))
    WebDriverWait(browser, WAIT_S).until(lambda b: len(_shown_scores(b, "labels")) == 2)
    shown = _shown_scores(browser, "labels")
    expected = _predict_video_rows(served.video, served.video_model, capsys)
    assert [name for name, _ in shown] == [name for name, _ in expected]
    assert [score for _, score in shown] == pytest.approx([score for _, score in expected], abs=6e-5)
    picture = browser.find_element(By.ID, "attention-picture")
    assert picture.get_attribute("src").startswith("data:image/gif;base64,")
    assert browser.execute_script("return arguments[0].naturalWidth", picture) > 0  # the browser decoded it
    assert "Attention of layer2.1_nonlocal" in browser.find_element(By.ID, "attention").text  # the first block
    timing = browser.find_element(By.ID, "timing").text
    assert re.match(r"Took \d+\.\d\d s: .*3x1 views of 4 frames, fp32 on cpu", timing), timing
    browser.save_screenshot(str(tmp_path / "video.png"))
    assert (tmp_path / "video.png").stat().st_size > 10_000


def test_an_uploaded_image_shows_the_pose_models_skeleton(browser: WebDriver, served: Served, tmp_path: Path) -> None:
    _open(browser, served, "Image")
    _upload(browser, "#image-upload input[type=file]", served.image)
    WebDriverWait(browser, WAIT_S).until(lambda b: "000001" in b.find_element(By.ID, "image-upload").text)  # name, size
    _click(browser, "Analyse")
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#drawn img"))
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#image-attention img"))
    drawn = browser.find_element(By.CSS_SELECTOR, "#drawn img")
    WebDriverWait(browser, WAIT_S).until(lambda b: b.execute_script("return arguments[0].naturalWidth", drawn) > 0)
    assert browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", drawn) == [150, 120]
    assert "simplebaseline_r18_nl" in browser.find_element(By.TAG_NAME, "body").text  # the card facts
    browser.save_screenshot(str(tmp_path / "pose.png"))


def test_an_oversized_upload_shows_the_limit(browser: WebDriver, served: Served, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(int(LIMITS["max_file_mb"] * 1024 * 1024) + 1024))
    _open(browser, served, "Video")
    _upload(browser, "input[type=file]", big)
    WebDriverWait(browser, WAIT_S).until(lambda b: "maximum allowed size" in b.find_element(By.TAG_NAME, "body").text)
    assert re.search(
        r'exceed the maximum allowed size of 512(\.0)? ?Kb: "big\.mp4"', browser.find_element(By.TAG_NAME, "body").text
    )
    browser.save_screenshot(str(tmp_path / "limit.png"))


def test_a_refusal_from_the_models_side_is_shown_in_the_page(browser: WebDriver, served: Served) -> None:
    _open(browser, served, "Video")
    _upload(browser, "input[type=file]", served.long_video)
    _click(browser, "Classify")
    WebDriverWait(browser, WAIT_S).until(lambda b: "upload a shorter clip" in b.find_element(By.TAG_NAME, "body").text)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert f"6.0 s long; the limit is {LIMITS['max_video_seconds']:g} s" in body
