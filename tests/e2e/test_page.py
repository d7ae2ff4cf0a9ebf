"""The /_local/ page in a real headless browser: Debian's Chromium and chromedriver, driven by
Selenium with explicit paths (nothing is downloaded). Skipped, in one line, where they are absent."""
from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
EVENTS = Path(__file__).resolve().parents[1] / "events"
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no Chromium: apt-get install -y chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def until(predicate, timeout: float = 30, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except Exception:  # the page re-renders every 2 s: an element may go stale between two reads
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def rows(driver, **attributes) -> list:
    from selenium.webdriver.common.by import By

    selector = "#rows tr" + "".join(f'[data-{k.replace("_", "-")}="{v}"]' for k, v in attributes.items())
    return driver.find_elements(By.CSS_SELECTOR, selector)


def choose(driver, select_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    until(lambda: value in [o.get_attribute("value") for o in
                            Select(driver.find_element(By.ID, select_id)).options], what=f"{value} in #{select_id}")
    Select(driver.find_element(By.ID, select_id)).select_by_value(value)


def test_the_page_shows_deliveries_their_attempts_dead_letters_replays_and_faults(stack, browser):
    from e2e.test_local_stack import post_webhook, unique_stripe
    from selenium.webdriver.common.by import By

    target = "order_confirmation"
    rule = next(name for name, spec in stack.info["rules"].items() if target in spec["targets"])
    assert stack.json("POST", "/_local/faults", {"target": target, "fail_next": 1000})[0] == 200
    status, _, answer = post_webhook(stack, "stripe", unique_stripe())
    assert status == 202
    (event_id,) = answer["events"]
    stack.wait_for(lambda rs: any(r["event_id"] == event_id and r["target"] == target and r["status"] == "dead_lettered"
                                  for r in rs), timeout=90, what="the dead letter")

    browser.get(f"{stack.base_url}/_local/")
    until(lambda: rows(browser, event_id=event_id), what="the event's rows")
    assert DATE_TIME.match(until(lambda: browser.find_element(By.ID, "updated").text if DATE_TIME.match(
        browser.find_element(By.ID, "updated").text) else None, what="a last-updated time"))
    assert DATE_TIME.match(rows(browser, event_id=event_id)[0].find_elements(By.TAG_NAME, "td")[0].text)

    # Filters: by status, by rule, by source.
    choose(browser, "filter-status", "dead_lettered")
    until(lambda: (lambda shown: shown and all(r.get_attribute("data-status") == "dead_lettered" for r in shown))(
        rows(browser)), what="only dead letters")
    choose(browser, "filter-rule", rule)
    until(lambda: all(r.find_elements(By.TAG_NAME, "td")[3].text == rule for r in rows(browser)) and rows(browser),
          what=f"only {rule}")
    choose(browser, "filter-source", "mangaassist.payments")
    until(lambda: rows(browser, event_id=event_id) and all(
        r.find_elements(By.TAG_NAME, "td")[2].text.startswith("mangaassist.payments") for r in rows(browser)),
        what="only payments")

    # The event: its payload and every attempt's error, not only the last.
    rows(browser, event_id=event_id)[0].click()
    until(lambda: event_id in browser.find_element(By.ID, "detail-event").text, what="the event's payload")
    assert json.loads(browser.find_element(By.ID, "detail-event").text)["detail-type"] == "PaymentCompleted"
    attempts = f'#attempts li[data-target="{target}"] li.attempt-error'
    errors = until(lambda: browser.find_elements(By.CSS_SELECTOR, attempts), what="the attempts")
    record = next(r for r in stack.deliveries() if r["event_id"] == event_id and r["target"] == target)
    assert len(errors) == record["attempts"] >= 2
    assert all("InjectedFault" in e.text or "fault injected" in e.text for e in errors)

    # Active faults, with a clear button.
    clear = until(lambda: browser.find_element(By.CSS_SELECTOR, f'#faults li[data-target="{target}"] button.clear'),
                  what="the fault")
    clear.click()
    until(lambda: not browser.find_elements(By.CSS_SELECTOR, f'#faults li[data-target="{target}"]'), what="no fault")
    assert stack.json("GET", "/_local/faults")[2]["faults"] == {}

    # The dead-letter panel's redrive button: the event is then delivered, and shows so.
    dlq = stack.info["dlqs"][next(k for k in stack.info["dlqs"] if k.startswith(f"{rule}/"))]["name"]
    button = until(lambda: (lambda b: b if b.is_enabled() else None)(
        browser.find_element(By.CSS_SELECTOR, f'#dlqs tr[data-dlq="{dlq}"] button.redrive')), what="the redrive button")
    button.click()
    until(lambda: "redrove" in browser.find_element(By.ID, "message").text, what="the redrive's summary")
    choose(browser, "filter-status", "delivered")
    until(lambda: any(r.get_attribute("data-target") == target for r in rows(browser, event_id=event_id)),
          what="the redriven delivery shown as delivered")
    redriven = next(r for r in stack.deliveries() if r["event_id"] == event_id and r["target"] == target)
    assert redriven["status"] == "delivered" and redriven["redriven"] is True

    # A replay, with its progress to completion.
    name = f"page-{uuid.uuid4().hex[:6]}"
    now = time.time()
    status, _, started = stack.json("POST", "/_local/replays", {"name": name, "start": now - 3600, "end": now + 60,
                                                                "rules": [rule]})
    assert status == 200, started
    done = until(lambda: (lambda r: r if r and r[0].find_element(By.CLASS_NAME, "state").text == "COMPLETED" else None)(
        browser.find_elements(By.CSS_SELECTOR, f'#replays tr[data-replay="{name}"]')), timeout=60, what="the replay")
    progress = done[0].find_element(By.CLASS_NAME, "progress").text
    assert re.search(rf"(\d+)/{started['deliveries']} delivered", progress), progress


def test_the_page_is_not_framed_cached_or_scripted_from_elsewhere(stack):
    status, headers, body = stack.request("GET", "/_local/", token=False)
    headers = {k.lower(): v for k, v in headers.items()}
    assert status == 200 and headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]  # no script but this page's own
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'nonce="{nonce}"'.encode() in body and stack.info["local_token"].encode() in body
