"""The labelling page in a real browser: no key press is lost, and undo can be redone.

Keys typed faster than the answers are saved wait in the page and answer
successive images, one each, in the order typed. A held Backspace (its
repeats) undoes once, and Shift+Backspace gives the answer back. Without
Chromium, its driver or Selenium the tests are skipped, except on CI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .test_labelling_browser import (  # noqa: F401 (fixtures)
    WAIT_S,
    Database,
    browser,
    page_helpers,
    served,
)


def _page(driver: Any, url: str) -> tuple[Callable, Callable]:
    until, shown = page_helpers(driver)
    driver.get(url)
    until(shown, "an image on screen")
    return until, shown


def _typed(db: Database) -> list[tuple[int, str | None]]:
    """(image, class) of every answer given, in the order the database got them."""
    return db.rows(
        "SELECT h.image_id, c.name FROM history h LEFT JOIN classes c ON c.id = h.class_id "
        "WHERE h.action IN ('label', 'skip') ORDER BY h.id"
    )


def test_ten_keys_in_one_burst_answer_ten_successive_images(
    served: tuple[Path, str],  # noqa: F811 (the fixtures imported above)
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    workdir, url = served
    db = Database(workdir)
    until, shown = _page(browser, url)
    order = browser.execute_script("return state.pending.map((p) => p.image_id);")
    assert len(order) == 12 and shown() == order[0]
    keys = "3141592653"
    by_key = {key: name for name, key in db.keys().items()}
    browser.find_element(By.TAG_NAME, "body").send_keys(keys)  # one burst
    until(lambda: len(db.answers()) == 10, "ten answers in the database")
    until(lambda: shown() == order[10], "the eleventh image on screen")
    assert _typed(db) == [(i, by_key[k]) for i, k in zip(order[:10], keys, strict=True)]
    assert db.answers() == {i: by_key[k] for i, k in zip(order[:10], keys, strict=True)}
    until(
        lambda: "10 / 12 answered" in browser.find_element(By.ID, "counter").text,
        "the counter",
    )


def test_a_held_backspace_undoes_once_and_shift_backspace_redoes(
    served: tuple[Path, str],  # noqa: F811 (the fixtures imported above)
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    workdir, url = served
    db = Database(workdir)
    until, shown = _page(browser, url)
    order = browser.execute_script("return state.pending.map((p) => p.image_id);")
    keys = db.keys()
    by_key = {key: name for name, key in keys.items()}
    for n, image_id in enumerate(order[:4]):
        until(lambda image_id=image_id: shown() == image_id, f"image {image_id} on screen")
        browser.find_element(By.TAG_NAME, "body").send_keys(str(n + 1))
        until(lambda image_id=image_id: image_id in db.answers(), f"the answer of {image_id}")
    expected = {i: by_key[str(n + 1)] for n, i in enumerate(order[:4])}
    until(lambda: shown() == order[4], "the fifth image on screen")
    assert db.answers() == expected
    # Backspace held down: one press, then the key's repeats, 40 ms apart, as a keyboard sends
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const send = (repeat) => document.body.dispatchEvent(new KeyboardEvent('keydown',"
        " {key: 'Backspace', code: 'Backspace', repeat, bubbles: true, cancelable: true}));"
        "send(false);"
        "let n = 0;"
        "const timer = setInterval(() => {"
        "  send(true);"
        "  if (++n === 12) { clearInterval(timer); setTimeout(done, 300); }"
        "}, 40);"
    )
    until(lambda: shown() == order[3], "the undone image back on screen")
    del expected[order[3]]
    until(lambda: db.answers() == expected, "one answer undone")
    assert db.answers() == expected
    assert len(db.rows("SELECT 1 FROM history WHERE undone = 1")) == 1
    # the help line shows the redo key, and Shift+Backspace brings the answer back
    controls = browser.find_element(By.ID, "controls").text.lower()
    assert "redo" in controls and "shift" in controls
    actions = ActionChains(browser)
    actions.key_down(Keys.SHIFT).send_keys(Keys.BACKSPACE).key_up(Keys.SHIFT).perform()
    expected[order[3]] = by_key["4"]
    until(lambda: db.answers() == expected, "the answer redone")
    until(lambda: shown() == order[4], "the fifth image on screen again")
    # nothing more to redo: the page says so and changes nothing
    actions.key_down(Keys.SHIFT).send_keys(Keys.BACKSPACE).key_up(Keys.SHIFT).perform()
    until(
        lambda: "nothing to redo" in browser.find_element(By.ID, "message").text,
        "the page to say there is nothing to redo",
    )
    assert db.answers() == expected
