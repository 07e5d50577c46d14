"""The web console in real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium):
an operator logs in, sees a pending recommendation of the embedded simulated cluster (96 hosts), applies
it and finds it carried out in the history under their name; a viewer cannot apply.

Skipped when chromium, chromedriver or selenium is missing, except under CI=true, where that fails
(tests/run.sh installs them). With BALANCER_CONSOLE_SCREENSHOT=path the console's page is saved there
(docs/console.png is made so).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from service_helpers import Running, config_of, sim_config

pytestmark = pytest.mark.integration

OPERATOR = ("olga", "olga-op-password")
VIEWER = ("vic", "vic-viewer-password")
WAIT = 60


def _need(problem: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService
    except ImportError:
        _need("selenium is not installed (pip install -e '.[test]')")
    browser = shutil.which("chromium")
    chromedriver = shutil.which("chromedriver")
    if browser is None or chromedriver is None:
        _need("chromium or chromedriver is missing (tests/run.sh installs chromium and chromium-driver with apt-get)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--no-first-run", "--disable-extensions", "--disable-background-networking", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=DriverService(executable_path=chromedriver))
    d.set_page_load_timeout(WAIT)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    import yaml

    from balancer.web.auth import hash_password

    tmp = tmp_path_factory.mktemp("console-browser")
    users = tmp / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [
        {"name": OPERATOR[0], "role": "operator", "password_hash": hash_password(OPERATOR[1])},
        {"name": VIEWER[0], "role": "viewer", "password_hash": hash_password(VIEWER[1])},
    ]}), encoding="utf-8")
    data = sim_config(tmp, drs={"automation": "manual", "interval": "1h", "migration_threshold": 3},
                      sim={"hosts": 96, "vms": 1200}, console={"users_file": str(users), "refresh": "2s"})
    running = Running(config_of(data))
    cluster = running.service.runners[0].name
    running.wait_cycles(cluster, 1, timeout=120)
    yield running, cluster
    assert running.stop() == 0


def _login(d, url: str, user: tuple[str, str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    d.delete_all_cookies()
    d.get(url + "/")
    WebDriverWait(d, WAIT).until(EC.presence_of_element_located((By.ID, "username")))  # sent to the login form
    d.find_element(By.ID, "username").send_keys(user[0])
    d.find_element(By.ID, "password").send_keys(user[1])
    d.find_element(By.ID, "login").click()
    WebDriverWait(d, WAIT).until(EC.text_to_be_present_in_element((By.ID, "whoami"), user[0]))


def _no_horizontal_scroll(d) -> None:
    width = d.execute_script("return document.documentElement.scrollWidth")
    assert width <= 1280, f"the page is {width} px wide at a 1280 px window"


def test_an_operator_applies_a_recommendation_and_finds_it_in_the_history(driver, service):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    running, cluster = service
    d = driver
    _login(d, running.url, OPERATOR)
    row = d.find_element(By.CSS_SELECTOR, "#clusters tbody tr")
    assert cluster in row.text and "DRS manual" in row.text
    pending = int(row.find_element(By.CSS_SELECTOR, "a.pending").text)
    assert pending >= 1
    _no_horizontal_scroll(d)
    d.find_element(By.LINK_TEXT, cluster).click()
    WebDriverWait(d, WAIT).until(EC.presence_of_element_located((By.ID, "recs")))

    # the hosts chart: 96 hosts, each row's name readable (not clipped to nothing, not tiny)
    rows = d.find_elements(By.CSS_SELECTOR, "#hostchart .hostrow")
    assert len(rows) == 96
    for r in rows[:3] + rows[-3:]:
        name = r.find_element(By.CSS_SELECTOR, ".hname")
        assert name.text.startswith("esx") and name.size["height"] >= 12
        assert float(d.execute_script("return parseFloat(getComputedStyle(arguments[0]).fontSize)", name)) >= 11
    _no_horizontal_scroll(d)

    first = d.find_element(By.CSS_SELECTOR, "#recs tbody tr")
    rid = first.get_attribute("data-id")
    action = first.find_elements(By.TAG_NAME, "td")[2].text.split()  # move <vm> <source> → <target> [mandatory]
    vm, target = action[1], action[4]
    first.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
    screenshot = os.environ.get("BALANCER_CONSOLE_SCREENSHOT")
    d.find_element(By.ID, "apply").click()

    flash = WebDriverWait(d, WAIT).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".flash-ok")))
    assert f"Applied by {OPERATOR[0]}" in flash.text and rid in flash.text and "success" in flash.text
    assert rid not in [tr.get_attribute("data-id") for tr in d.find_elements(By.CSS_SELECTOR, "#recs tbody tr")]
    history = d.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    mine = [tr for tr in history if vm in tr.text and "approve" in tr.text]
    assert mine, [tr.text for tr in history]
    assert mine[0].find_element(By.CSS_SELECTOR, "td.by").text == OPERATOR[0]
    assert "success" in mine[0].text
    assert running.service.runners[0].source.snapshot().vms_by_name()[vm].host == target

    # the page refreshes itself while open (console.refresh 2s): the parts are fetched again
    WebDriverWait(d, WAIT).until(lambda drv: drv.execute_script("return document.body.dataset.refreshed"))
    assert d.find_elements(By.CSS_SELECTOR, "#history td.by")
    if screenshot:
        d.execute_script("window.scrollTo(0, 0)")
        d.save_screenshot(screenshot)
    severe = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, [e["message"][:300] for e in severe]


def test_a_viewer_cannot_apply(driver, service):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    running, cluster = service
    d = driver
    _login(d, running.url, VIEWER)
    d.get(f"{running.url}/clusters/{cluster}")
    WebDriverWait(d, WAIT).until(EC.presence_of_element_located((By.ID, "recs")))
    assert "viewer" in d.find_element(By.ID, "readonly").text
    apply = d.find_element(By.ID, "apply")
    assert not apply.is_enabled()
    box = d.find_element(By.CSS_SELECTOR, "#recs tbody tr input[type=checkbox]")
    assert not box.is_enabled()
    rid = box.get_attribute("value")
    # the buttons enabled by hand: the server refuses all the same
    d.execute_script("document.querySelectorAll('#recs-form [disabled]').forEach(e => e.removeAttribute('disabled'))")
    d.find_element(By.ID, f"rec-{rid}").click()
    d.find_element(By.ID, "apply").click()
    WebDriverWait(d, WAIT).until(EC.presence_of_element_located((By.TAG_NAME, "pre")))
    assert "role viewer" in d.find_element(By.TAG_NAME, "body").text
    from balancer.journal import Journal

    journal = Journal(running.service.config.journal.path)
    try:
        assert journal.recommendation(cluster, rid).state == "pending"
    finally:
        journal.close()
