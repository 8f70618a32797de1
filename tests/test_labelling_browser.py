"""The labelling page in a real browser: keys, clicks, skip, undo and a changed answer.

Headless Chromium drives the page that ``moby-al label serve`` serves; the
test then reads the work folder's database and checks that it holds
exactly what was typed and clicked. Without Chromium, its driver or
Selenium the test is skipped, except on CI (``CI`` set) where it fails.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from moby_al_plugin.cli import main

from .conftest import DIGIT_CLASSES

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "pictures" / "labelling-page.png"
WAIT_S = 20.0  # one page update; training a round in the background gets longer
TRAIN_WAIT_S = 120.0
OPTIONS = ["--pretrain-epochs", "1", "--epochs", "1", "--train-samples", "64"]


def _unavailable(reason: str) -> None:
    # on CI a missing browser is a broken set-up, not a reason to test less
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser test must run)")
    pytest.skip(reason)


def _browser_paths() -> tuple[str, str]:
    found = []
    for name in ("chromium", "chromedriver"):
        path = shutil.which(name) or f"/usr/bin/{name}"
        if not os.access(path, os.X_OK):
            _unavailable(f"{name} not found (Debian: apt-get install chromium chromium-driver)")
        found.append(path)
    return found[0], found[1]


def page_helpers(driver: Any) -> tuple[Callable[..., Any], Callable[[], int | None]]:
    """``until(condition, what)``, a wait that names what it waited for, and ``shown()``,
    the id of the image on screen (None while none waits or the page has not drawn yet)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def until(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
            lambda _: condition(), message=f"waited {timeout} s for {what}"
        )

    def shown() -> int | None:
        value = driver.execute_script(
            "const img = document.getElementById('image');"
            "return img.hidden ? null : (img.dataset.image || null);"
        )
        return None if value is None else int(value)

    return until, shown


class Database:
    """Plain read-only queries on the work folder's database, one connection each."""

    def __init__(self, workdir: Path) -> None:
        self.file = workdir / "labels.sqlite"

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(self.file, timeout=30.0)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def answers(self) -> dict[int, str | None]:
        """image id -> class name (None: skipped) of every current answer."""
        return dict(
            self.rows(
                "SELECT a.image_id, c.name FROM answers a LEFT JOIN classes c ON c.id = a.class_id"
            )
        )

    def image_path(self, image_id: int) -> str:
        return self.rows("SELECT path FROM images WHERE id = ?", (image_id,))[0][0]

    def keys(self) -> dict[str, str]:
        """class name -> its key on the page."""
        return dict(self.rows("SELECT name, key FROM classes"))

    def suggestion(self, image_id: int) -> str | None:
        rows = self.rows(
            "SELECT c.name FROM queue q JOIN classes c ON c.id = q.suggestion WHERE q.image_id = ?",
            (image_id,),
        )
        return rows[0][0] if rows else None

    def running_jobs(self) -> list[int]:
        return [pid for (pid,) in self.rows("SELECT pid FROM jobs WHERE state = 'running'") if pid]


def _read_url(process: subprocess.Popen, timeout: float = 60.0) -> str:
    """The page's URL from serve's output, without blocking forever on a silent process."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)  # end of output: serve exited

    threading.Thread(target=pump, daemon=True).start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"serve printed no URL in {timeout} s: {seen}") from None
        if line is None:
            raise AssertionError(f"serve exited ({process.wait()}) before its URL: {seen}")
        seen.append(line)
        if line.startswith("labelling page: "):
            return line.split(": ", 1)[1].strip()


@contextlib.contextmanager
def serve_page(workdir: Path) -> Iterator[str]:
    """``moby-al label serve`` of ``workdir`` on a free port, for the block: its URL.

    Afterwards serve is stopped, and so is a training the page started.
    """
    work = ["--workdir", str(workdir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    serve = [sys.executable, "-m", "moby_al_plugin", "label", "serve", *work, "--port", "0"]
    process = subprocess.Popen(
        [*serve, "--n", "12", *OPTIONS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        yield _read_url(process)
    finally:
        # a training the page started runs in its own session: end it too
        for pid in Database(workdir).running_jobs():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _init(workdir: Path, folder: Path, classes: str) -> None:
    command = ["label", "init", "--workdir", str(workdir), "--images", str(folder)]
    assert main([*command, "--classes", classes, "--image-size", "16"]) == 0


@pytest.fixture
def served(tmp_path: Path, digit_image_folder: tuple[Path, dict[str, str]]) -> Iterator[Any]:
    """A work folder with a first batch of 12, served on a free port: (workdir, URL)."""
    folder, _ = digit_image_folder
    workdir = tmp_path / "work"
    _init(workdir, folder, DIGIT_CLASSES)
    assert main(["label", "next", "--workdir", str(workdir), "--n", "12", *OPTIONS]) == 0
    with serve_page(workdir) as url:
        yield workdir, url


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through the system's chromedriver (no driver download)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        _unavailable(f"selenium is not installed: {exc}")
    chromium, chromedriver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    headless = "--headless=new --no-sandbox --disable-dev-shm-usage --window-size=1280,1000"
    for argument in [*headless.split(), "--force-device-scale-factor=1"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_labelling_page_records_exactly_what_was_typed_and_clicked(
    served: tuple[Path, str], browser: Any, digit_image_folder: Any, tmp_path: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    workdir, url = served
    _, truth = digit_image_folder
    db = Database(workdir)
    keys = db.keys()
    driver = browser

    until, shown = page_helpers(driver)

    def answered(image_id: int, label: str | None) -> None:
        # the page moved on and the answer is committed
        until(lambda: shown() != image_id, f"the page to move on from image {image_id}")
        until(
            lambda: image_id in db.answers() and db.answers()[image_id] == label,
            f"the answer {label!r} of image {image_id} in the database",
        )

    def press(key: str) -> None:
        # keys go to the focused element: leave a drop-down first, as a click on the page would
        driver.execute_script("document.activeElement.blur();")
        driver.find_element(By.TAG_NAME, "body").send_keys(key)

    def classes(selector: str) -> list[str]:
        # read in one script: the page may redraw the buttons between two WebDriver calls
        return driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map((b) => b.dataset.class);",
            selector,
        )

    def recent(image_id: int) -> str | None:
        """The answer the list of earlier answers shows for an image ("" = skipped)."""
        return driver.execute_script(
            "const s = document.querySelector(`#recent select[data-image='${arguments[0]}']`);"
            "return s ? s.value : null;",
            image_id,
        )

    def act(action: Callable[[], None]) -> Callable[[], bool]:
        # an element found just before the page redrew is stale: find it again
        def attempt() -> bool:
            try:
                action()
            except StaleElementReferenceException:
                return False
            return True

        return attempt

    expected: dict[int, str | None] = {}

    def answer_by_key() -> int:
        image_id = until(shown, "an image on screen")
        label = truth[db.image_path(image_id)]
        press(keys[label])
        expected[image_id] = label
        answered(image_id, label)
        return image_id

    driver.get(url)
    until(lambda: classes(".class-button"), "the class buttons")
    assert classes(".class-button") == DIGIT_CLASSES.split(",")
    assert [keys[name] for name in classes(".class-button")] == list("1234567890")
    # a cold start suggests nothing
    assert not classes(".class-button.suggested")

    first = answer_by_key()
    for _ in range(4):
        answer_by_key()

    for _ in range(3):
        image_id = until(shown, "an image on screen")
        label = truth[db.image_path(image_id)]
        button = f'.class-button[data-class="{label}"]'

        def click(button: str = button) -> None:
            driver.find_element(By.CSS_SELECTOR, button).click()

        until(act(click), f"a click on {button}")
        expected[image_id] = label
        answered(image_id, label)

    skipped = until(shown, "an image on screen")
    press(Keys.SPACE)
    expected[skipped] = None
    answered(skipped, None)
    assert db.answers() == expected

    press(Keys.BACKSPACE)
    until(lambda: shown() == skipped, "the undone image back on screen")
    until(lambda: skipped not in db.answers(), "the undone skip gone from the database")
    del expected[skipped]

    # change the first answer to another class in the list of earlier answers
    other = str((int(expected[first]) + 1) % 10)

    assert recent(first) == expected[first]
    menu = f'#recent select[data-image="{first}"]'
    until(
        act(lambda: Select(driver.find_element(By.CSS_SELECTOR, menu)).select_by_value(other)),
        "a choice in the drop-down of the first answer",
    )
    expected[first] = other
    until(lambda: db.answers().get(first) == other, "the changed answer in the database")
    until(lambda: recent(first) == other, "the page to show the change")
    until(lambda: shown() == skipped, "the undone image still on screen")

    assert db.answers() == expected
    assert "8 / 12 answered in this batch" in driver.find_element(By.ID, "counter").text

    # answer the rest of the first batch, so that the next batch comes first on screen
    while shown() is not None:
        answer_by_key()
    assert db.answers() == expected and len(expected) == 12

    # train and query the next batch from the page; its images come with suggestions
    size = driver.find_element(By.ID, "train-n")
    size.clear()
    size.send_keys("6")
    driver.find_element(By.ID, "train").click()
    until(
        lambda: classes(".class-button.suggested"),
        "a suggestion after training",
        timeout=TRAIN_WAIT_S,
    )
    current = until(shown, "an image of the new batch")
    assert classes(".class-button.suggested") == [db.suggestion(current)]
    assert driver.find_element(By.ID, "suggestion").is_displayed()
    assert "not selected" in driver.find_element(By.ID, "suggestion").text
    # suggested is not answered: nothing is recorded until a key is pressed
    assert current not in db.answers()
    assert db.answers() == expected

    # the buttons show the latest images of their class; wait until every picture is loaded
    assert driver.find_elements(By.CSS_SELECTOR, ".class-button .examples img")
    until(
        lambda: driver.execute_script(
            "return [...document.images].every((img) => img.hidden || "
            "(img.complete && img.naturalWidth > 0));"
        ),
        "the pictures to load",
    )
    until(lambda: "queued" in driver.find_element(By.ID, "job").text, "the job's final message")

    target = SCREENSHOT if os.environ.get("MOBY_AL_SCREENSHOT") else tmp_path / "page.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    png = driver.get_screenshot_as_png()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    target.write_bytes(png)
    assert target.stat().st_size == len(png)


# Fashion-MNIST's classes in their order (keys 1 to 0); alphabetically Ankle boot comes first
FASHION = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"


@pytest.fixture
def two_batches(tmp_path: Path, digit_image_folder: tuple[Path, dict[str, str]]) -> Iterator[Any]:
    """Batch 1 (12 images) and batch 2 (6), both unanswered, served: (workdir, URL)."""
    folder, _ = digit_image_folder
    workdir = tmp_path / "work"
    _init(workdir, folder, FASHION)
    for n in ("12", "6"):
        assert main(["label", "next", "--workdir", str(workdir), "--n", n, *OPTIONS]) == 0
    with serve_page(workdir) as url:
        yield workdir, url


def test_the_counter_and_the_histogram_follow_the_batch_on_screen(
    two_batches: tuple[Path, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    workdir, url = two_batches
    db = Database(workdir)
    classes = FASHION.split(",")
    assert db.keys() == dict(zip(classes, "1234567890"))  # key 0 is Ankle boot's
    batch_of = dict(db.rows("SELECT image_id, batch_id FROM queue"))
    until, shown = page_helpers(browser)

    def header() -> str:
        return browser.find_element(By.TAG_NAME, "header").text

    def waiting() -> list[int]:
        """Every 'N waiting' the header shows, the counter's and the job message's."""
        return [int(n) for n in re.findall(r"(\d+) waiting", header())]

    def histogram() -> list[tuple[str, int]]:
        rows = browser.execute_script(
            "return [...document.querySelectorAll('#histogram .bar')]"
            ".map((r) => [r.children[0].textContent, r.children[2].textContent]);"
        )
        return [(name, int(n)) for name, n in rows]

    def counts() -> list[tuple[str, int]]:
        labelled = dict(
            db.rows(
                "SELECT c.name, COUNT(a.image_id) FROM classes c LEFT JOIN answers a "
                "ON a.class_id = c.id GROUP BY c.id"
            )
        )
        return [(name, labelled[name]) for name in classes]

    def answer(key: str) -> None:
        image_id = until(shown, "an image on screen")
        browser.execute_script("document.activeElement.blur();")
        browser.find_element(By.TAG_NAME, "body").send_keys(key)
        until(lambda: image_id in db.answers(), f"the answer of image {image_id}")

    browser.get(url)
    until(shown, "an image on screen")
    until(lambda: "queued 6 images in batch 2" in header(), "the last job's message")
    # batch 1 is on screen, though batch 2 is the latest: the counter counts batch 1
    assert batch_of[shown()] == 1
    until(lambda: "0 / 12 answered in this batch" in header(), "the counter of batch 1")
    assert "/ 6 answered" not in header()
    assert waiting() == [18]
    # the classes in the order of their keys, not alphabetically
    assert histogram() == [(name, 0) for name in classes]

    for key in "00":
        answer(key)
    until(lambda: "2 / 12 answered in this batch" in header(), "the counter after two answers")
    until(lambda: waiting() == [16], "16 waiting, and no other count")
    until(lambda: histogram() == counts(), "the histogram of the answers")
    assert histogram()[-1] == ("Ankle boot", 2)

    for key in "9876543210":
        answer(key)
    until(lambda: shown() is not None and batch_of[shown()] == 2, "batch 2 on screen")
    until(lambda: "0 / 6 answered in this batch" in header(), "the counter of batch 2")
    until(lambda: waiting() == [6], "6 waiting")
    until(lambda: histogram() == counts(), "the histogram of the answers")
    assert [name for name, _ in histogram()] == classes


@pytest.fixture
def suggested(tmp_path: Path, digit_image_folder: tuple[Path, dict[str, str]]) -> Iterator[Any]:
    """The page at its tallest: a suggestion and example images on every class button."""
    from moby_al_plugin.labelling import LabelStore

    folder, _ = digit_image_folder
    workdir = tmp_path / "work"
    _init(workdir, folder, FASHION)
    with LabelStore(workdir) as store:
        ids = store.candidates()[:40]
        store.add_batch(ids, [3] * len(ids), strategy="margin", cold_start=False)
        for n, image_id in enumerate(ids[:30]):
            store.answer(image_id, store.classes[n % 10])
    with serve_page(workdir) as url:
        yield workdir, url


def test_skip_and_undo_are_in_sight_in_a_1366x768_window(
    suggested: tuple[Path, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    _, url = suggested
    until, shown = page_helpers(browser)
    browser.set_window_size(1366, 768)
    browser.get(url)
    until(shown, "an image on screen")
    until(lambda: browser.find_element(By.ID, "suggestion").is_displayed(), "the suggestion")
    until(
        lambda: (
            browser.execute_script(
                "return document.querySelectorAll('.class-button .examples img').length;"
            )
            == 30
        ),
        "the example images on the class buttons",
    )
    # the window's own bars take their share: the page gets less than 768 pixels
    view = browser.execute_script(
        "return {width: window.innerWidth, height: window.innerHeight, top: window.scrollY};"
    )
    assert view["top"] == 0 and view["height"] <= 768
    for button in ("skip", "undo"):
        rect = browser.execute_script(
            "return document.getElementById(arguments[0]).getBoundingClientRect().toJSON();",
            button,
        )
        assert 0 <= rect["top"] and rect["bottom"] <= view["height"], (button, rect, view)
        assert 0 <= rect["left"] and rect["right"] <= view["width"], (button, rect, view)


def test_the_page_says_when_more_labels_stop_changing_the_model(
    served: tuple[Path, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    from moby_al_plugin.labelling.stopping_history import record_round
    from moby_al_plugin.labelling.store import LabelStore

    workdir, url = served
    until, shown = page_helpers(browser)
    browser.get(url)
    until(shown, "an image on screen")
    # the first round was cold (no model yet): the rule has nothing to say
    assert not browser.find_element(By.ID, "stopping").is_displayed()
    classes = DIGIT_CLASSES.split(",")
    with LabelStore(workdir) as store:
        ids = [1, 2, 3, 4, 5, 6]
        for n, labels in ((20, [0, 1, 1, 2, 2, 3]), (40, [0, 1, 2, 2, 3, 3])):
            record_round(store, ids, labels, n_labelled=n, classes=classes)
    browser.refresh()

    def stopping() -> str:
        return browser.find_element(By.ID, "stopping").text

    until(lambda: "still changing" in stopping(), "the rule's first kappa")
    assert "0 of 3 stable rounds" in stopping()
    with LabelStore(workdir) as store:
        for n in (60, 80, 100):
            record_round(store, ids, [0, 1, 2, 2, 3, 3], n_labelled=n, classes=classes)
    browser.refresh()
    until(
        lambda: "unchanged for the last 3 rounds" in stopping(),
        "the rule saying stop",
    )
    assert "more labels are unlikely to change this model" in stopping()
    assert "stop" in browser.find_element(By.ID, "stopping").get_attribute("class")
