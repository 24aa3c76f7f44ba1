"""The page at / in a real headless browser: Debian's chromium driven through chromium-driver (selenium).

Install the browser with `apt-get update && apt-get install -y chromium chromium-driver` (`make browser` does it
where apt-get runs as root; CI does). Without it these tests skip, saying so, unless BATON_REQUIRE_BROWSER=1 (CI),
which makes a missing browser a failure. Screenshots are saved under the test's tmp folder, and to
$BATON_ARTIFACTS when set."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving_helpers import ServerThread
from support import tagging_logits

from baton.serving.config import ServeConfig

_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_DRIVER = shutil.which("chromedriver")
_INSTALL = "apt-get update && apt-get install -y chromium chromium-driver (or: make browser)"

if not (_CHROMIUM and _DRIVER):
    if os.environ.get("BATON_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"the page tests need chromium and chromedriver: {_INSTALL}")
    pytest.skip(f"no chromium/chromedriver: {_INSTALL}", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(_CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(_DRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _screenshot(driver: Any, tmp_path: Path, name: str) -> None:
    driver.save_screenshot(str(tmp_path / name))
    artifacts = os.environ.get("BATON_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(artifacts) / name)


def _open(driver: Any, port: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"http://127.0.0.1:{port}/")
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def _submit(driver: Any, text: str, until: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    box = driver.find_element(By.ID, "texts")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, until))


def test_the_page_classifies_and_shows_the_card(browser: Any, tiny_bundle: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from baton.serving.client import Client

    with ServerThread(ServeConfig(bundle=str(tiny_bundle), warmup=False)) as s:
        assert s.server is not None and s.server.http_port
        _open(browser, s.server.http_port)
        assert browser.find_element(By.ID, "model-name").text == s.server.resolve(None).name
        _submit(browser, "I loved it\nterrible, I want my money back", ".result .label-row")
        boxes = browser.find_elements(By.CSS_SELECTOR, "#results .result")
        shown = [
            [
                (
                    row.get_attribute("data-label"),
                    float(row.get_attribute("data-score")),
                    "chosen" in row.get_attribute("class"),
                )
                for row in box.find_elements(By.CSS_SELECTOR, ".label-row")
            ]
            for box in boxes
        ]
        with Client(s.target) as client:
            expected = client.classify(["I loved it", "terrible, I want my money back"], top_k=0)
        assert len(shown) == 2
        for rows, answer in zip(shown, expected, strict=True):
            assert [label for label, _, _ in rows] == [label for label, _ in answer.top_k]  # every label, best first
            assert [label for label, _, chosen in rows if chosen] == [answer.label]
            assert abs(rows[0][1] - answer.score) < 1e-6
        card = browser.find_element(By.ID, "card-body")  # the card export wrote, read as Markdown
        assert card.find_element(By.TAG_NAME, "h1").text == s.server.resolve(None).name
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in card.find_elements(By.TAG_NAME, "tr")]
        assert ["variant", "accuracy"] in rows and "int8" in [row[0] for row in rows]
        _screenshot(browser, tmp_path, "page-classifier.png")


def test_the_page_asks_for_the_token(browser: Any, tiny_bundle: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    token = tmp_path / "token"
    token.write_text("s3cret")
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), auth_token_file=str(token), warmup=False)) as s:
        assert s.server is not None
        browser.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
        browser.get(f"http://127.0.0.1:{s.server.http_port}/")
        form = browser.find_element(By.ID, "token-form")
        WebDriverWait(browser, 20).until(lambda d: form.is_displayed())
        assert "bearer token" in browser.find_element(By.ID, "error").text
        browser.find_element(By.ID, "token").send_keys("s3cret")
        browser.find_element(By.ID, "token-submit").click()
        WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        _submit(browser, "fine", ".result .label-row")
        assert not form.is_displayed()


def test_the_page_highlights_entities_inline(browser: Any, tiny_ner_bundle: Path, tmp_path: Path) -> None:
    """The tiny entity model tags nothing reliably, so its engine is told which spans to tag (as in test_ner.py);
    everything from the tokenizer to the DOM is the real path."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from baton.serving.engine import build_engine

    text = "Yesterday Ada Lovelace met Alan Turing"
    spans = [(text.index(n), text.index(n) + len(n), "PER") for n in ("Ada Lovelace", "Alan Turing")]
    engine = build_engine(tiny_ner_bundle, "cpu", "fp32")
    engine.run = lambda encoded, wide=True: tagging_logits(engine.task, encoded, spans)  # type: ignore[method-assign]
    with ServerThread(ServeConfig(bundle=str(tiny_ner_bundle), warmup=False), engine=engine) as s:
        assert s.server is not None
        _open(browser, s.server.http_port)
        assert browser.find_element(By.ID, "aggregation-box").is_displayed()
        Select(browser.find_element(By.ID, "aggregation")).select_by_visible_text("first")
        _submit(browser, text, "mark.entity")
        marks = browser.find_elements(By.CSS_SELECTOR, "#results mark.entity")
        assert [(m.get_attribute("data-label"), m.text.split("\n")[0].removesuffix("PER").strip()) for m in marks] == [
            ("PER", "Ada Lovelace"),
            ("PER", "Alan Turing"),
        ]
        line = browser.find_element(By.CSS_SELECTOR, "#results .entities")
        assert line.text.replace("PER", "").replace("\n", "").split() == text.split()  # the text, whole and in order
        _screenshot(browser, tmp_path, "page-entities.png")


def test_the_page_lets_you_choose_a_model_of_a_repository(browser: Any, tiny_bundle: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from baton.serving.client import Client

    root = tmp_path / "repo"
    for name in ("alpha", "beta"):
        shutil.copytree(tiny_bundle, root / name)
    with ServerThread(ServeConfig(bundle=str(root), warmup=False)) as s:
        assert s.server is not None
        _open(browser, s.server.http_port)
        select = Select(browser.find_element(By.ID, "model"))
        assert [o.text for o in select.options] == ["alpha", "beta"]
        browser.execute_script("delete document.body.dataset.ready")
        select.select_by_visible_text("beta")
        WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        assert browser.find_element(By.ID, "model-name").text == "beta"
        _submit(browser, "I loved it", ".result .label-row")
        with Client(s.target, model="beta") as client:
            (expected,) = client.classify(["I loved it"])
        (chosen,) = browser.find_elements(By.CSS_SELECTOR, ".label-row.chosen")
        assert chosen.get_attribute("data-label") == expected.label
        text = s.metrics_text()
        assert 'method="http.Classify",model="beta"' in text and 'method="http.Classify",model="alpha"' not in text
