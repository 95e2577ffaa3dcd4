"""The status page and a call's page in a real headless browser: Debian's chromium driven by
selenium through chromedriver, against the app served over a socket (werkzeug in a thread)
and the local GoHighLevel/Slack fakes. ``scripts/ensure_browser.sh`` (run by ``make test``)
installs the browser; without it this test fails, it is never skipped."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from tests.browser.png import colours
from tests.conftest import ADMIN_TOKEN
from tests.test_admin import DAILY_LIMIT_SPENT, counts
from tests.test_pipeline import post, report
from tests.test_tenancy import tool_calls

WIDTHS = (390, 1280)  # a phone, a laptop


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromedriver are needed: scripts/ensure_browser.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # the Debian pair: nothing is downloaded
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.implicitly_wait(5)
    yield chrome
    chrome.quit()


@pytest.fixture
def served(make_app, integrations_env) -> Iterator[tuple[str, object]]:
    """(base URL, app): the app on a real socket, as a browser reaches it."""
    app = make_app(integrations_env)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(5)


def screenshot(chrome: webdriver.Chrome, width: int, name: str, tmp_path,
               at: str | None = None) -> None:
    """At ``width`` CSS pixels (scrolled to the element ``at``): saved, not blank, and
    nothing wider than the screen."""
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    if at:
        chrome.execute_script("document.getElementById(arguments[0]).scrollIntoView()", at)
    png = chrome.get_screenshot_as_png()
    (tmp_path / f"{name}-{width}.png").write_bytes(png)  # kept by pytest for a look
    shot_width, shot_height, distinct = colours(png)
    assert (shot_width, shot_height) == (width, 900)
    assert distinct > 10, f"{name} at {width} px looks blank ({distinct} colours)"
    overflow = chrome.execute_script("return document.documentElement.scrollWidth")
    assert overflow <= width, f"{name} is {overflow} px wide at {width} px"


def test_sign_in_open_a_call_deliver_again_and_sign_out(browser, served, ghl, slack, tmp_path):
    base, app = served
    ghl.fail_next(1, *DAILY_LIMIT_SPENT)  # GoHighLevel fails the note once, then answers
    tools = tool_calls("call-1", "asst-1", ("t1", "get_call_context", {"callId": "call-1"}))
    assert post(app, tools).status_code == 200
    assert post(app, report("call-1")).status_code == 200
    assert counts(app)["parked"] == 1 and ghl.notes == []

    browser.get(f"{base}/login")  # (/ would first ask for HTTP Basic credentials)
    browser.find_element(By.ID, "password").send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    assert browser.find_element(By.ID, "calls-24h").text == "1"
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) == 2
    for width in WIDTHS:
        screenshot(browser, width, "status", tmp_path, at="last-24h")

    browser.find_element(By.LINK_TEXT, "call-1").click()
    assert browser.find_element(By.ID, "caller").text == "•••0123"  # waits for the new page
    assert browser.current_url == f"{base}/calls/call-1"
    assert browser.find_element(By.CSS_SELECTOR, "#step-note .status").text == "parked"
    assert "get_call_context" in browser.find_element(By.ID, "tool-calls").text
    for width in WIDTHS:
        screenshot(browser, width, "call", tmp_path)

    browser.find_element(By.ID, "deliver-again").click()
    flash = browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert flash.startswith("Delivered again: 1 delivered, 0 parked again, 0 dead")
    assert browser.find_element(By.CSS_SELECTOR, "#step-note .status").text == "ok"
    assert not browser.find_elements(By.ID, "deliver-again")
    assert [note["contact_id"] for note in ghl.notes] == ["ghl-contact-7"]
    assert counts(app)["parked"] == 0 and len(slack.messages) == 1
    for width in WIDTHS:
        screenshot(browser, width, "delivered", tmp_path)

    browser.find_element(By.ID, "sign-out").click()
    assert browser.find_elements(By.ID, "password")  # back at the sign-in form
    browser.implicitly_wait(0)
    browser.get(f"{base}/calls/call-1")  # the session is over: a Basic challenge, no page
    assert not browser.find_elements(By.ID, "call")
