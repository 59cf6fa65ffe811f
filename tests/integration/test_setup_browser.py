"""The setup page in a real browser: the built UCC front end, driven by headless Chromium through chromedriver.

splunkweb is the loopback stand-in harness/splunkweb.py (the page's template, $C, i18n, the static bundle, and the
settings endpoint, answered by the built handler in its own process per request); splunkd behind the handler is the
strict FakeSplunkd of the handler tests. Steps: the page loads the macros' current values; each tab opens; an invalid
value shows the page's message and nothing is saved; a valid save reaches the macros; a failed macro write is reported
as it happened and nothing stays changed; a reload shows the saved values, and saving the page as loaded writes no
macro. chromium and chromedriver are installed with apt-get when missing (harness/webdriver.py); where that is
impossible the test is skipped with the reason.

Screenshots of each tab are taken on every run (into the test's temporary folder). To regenerate the ones the README
shows, in docs/images/:
    ESCAPE_SCREENSHOTS=1 ./test.sh tests/integration/test_setup_browser.py
"""
import os
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from tests.conftest import ROOT
from tests.integration.harness.setup_app import SettingsClient, make_app
from tests.integration.harness.splunkd import FakeSplunkd
from tests.integration.harness.splunkweb import SETTINGS, FakeSplunkweb
from tests.integration.harness.webdriver import Browser, find_browser
from tests.integration.test_setup_handler import built_confs, built_saved_searches

IMAGES = ROOT / "docs" / "images"
TABS = ["Tunables", "Data sources", "Analytics", "Logging"]
# Splunk's own header and footer scripts, which the page tries and does without; the stand-in does not serve them.
SPLUNK_CHROME = ("/build/api/get_theme.js", "/build/api/layout.js", "/favicon.ico")
KUBE = "Escape to Host - Pod or Workload Spec Breaks Host Isolation - Rule"
CHAIN = "Escape to Host - Container Escape Chain on Linux Host - Rule"


@pytest.fixture(scope="module")
def browser_paths() -> Tuple[str, str]:
    found = find_browser()
    if isinstance(found, str):
        pytest.skip("no headless browser: " + found)
    return found


@pytest.fixture
def page(tmp_path: Path, built_app: Path, browser_paths: Tuple[str, str]
         ) -> Iterator[Tuple[FakeSplunkd, FakeSplunkweb, Browser]]:
    app = make_app(tmp_path / "splunk")
    saved = built_saved_searches()
    for name in (KUBE, CHAIN):   # two enabled detections, so Data sources shows its status as an admin would see it
        saved[name]["disabled"] = "0"
    confs = built_confs()
    confs["macros"]["escape_kube_audit"]["definition"] = \
        '(index="k8s" (sourcetype="kube:apiserver-audit" OR source="kubernetes"))'
    fake = FakeSplunkd(confs, saved, counts={"escape_kube_audit": 4211, "escape_auditd": 0})
    with fake, FakeSplunkweb(app, SettingsClient(app, fake.uri)) as web:
        browser = Browser(*browser_paths, log=tmp_path / "chromedriver.log")
        try:
            yield fake, web, browser
        finally:
            browser.close()


def text(browser: Browser) -> str:
    return str(browser.run("return document.body.innerText"))


def field(browser: Browser, name: str) -> str:
    return str(browser.run("const e = document.querySelector('[data-name=\"' + arguments[0] + '\"] input, "
                           "[data-name=\"' + arguments[0] + '\"] textarea'); return e ? e.value : null;", name))


def visible_fields(browser: Browser) -> List[str]:
    return list(browser.run("return [...document.querySelectorAll('[data-test=\"control-group\"]')]"
                            ".filter(e => e.offsetParent !== null).map(e => e.getAttribute('data-name'));"))


def open_tab(browser: Browser, title: str) -> None:
    tab = next(t for t in browser.find_all('button[data-test="tab"]') if t.text.strip() == title)
    tab.click()
    browser.wait("the {} tab to be selected".format(title), lambda: tab.prop("ariaSelected") == "true")


def type_into(browser: Browser, name: str, value: str) -> None:
    element = browser.find('[data-name="{}"] input'.format(name))
    element.click()
    # Select everything and type over it: how a person replaces a value (clear() skips React's change event).
    element.type("\ue009a")   # Ctrl+A
    element.type("\ue017")    # Delete
    element.type(value)
    browser.wait("{} to read {!r}".format(name, value), lambda: field(browser, name) == value)


def save(browser: Browser) -> None:
    browser.run("[...document.querySelectorAll('button')].find(b => b.offsetParent !== null && "
                "b.innerText.trim() === 'Save').click();")


def wait_loaded(browser: Browser, name: str) -> None:
    browser.wait("the field {} to be shown".format(name), lambda: name in visible_fields(browser), timeout=60)


def macro_writes(fake: FakeSplunkd) -> Dict[str, str]:
    return {p.split("/")[-1]: params["definition"] for p, params in fake.posts("configs/conf-macros/")}


def shoot(browser: Browser, tmp: Path, name: str) -> None:
    folder = IMAGES if os.environ.get("ESCAPE_SCREENSHOTS") == "1" else tmp
    folder.mkdir(parents=True, exist_ok=True)
    browser.screenshot(folder / "setup-{}.png".format(name), whole_page=True)
    assert (folder / "setup-{}.png".format(name)).stat().st_size > 10_000


def test_the_setup_page_in_a_browser(page: Tuple[FakeSplunkd, FakeSplunkweb, Browser], tmp_path: Path) -> None:
    fake, web, browser = page
    fake.confs["macros"]["escape_time_window"]["definition"] = "120"            # an admin's direct macro edit
    fake.confs["macros"]["escape_allowed_kernel_modules"]["definition"] = '"nvme_pci"'

    # 1. Load: every tab's values come from the macros and saved searches, not from the stored stanza.
    browser.get(web.page())
    wait_loaded(browser, "time_window")
    assert field(browser, "time_window") == "120" and field(browser, "allowed_kernel_modules") == "nvme_pci"
    assert field(browser, "restricted_host_dirs") == "C:/Windows,C:/ProgramData,C:/Program Files,C:/Program Files (x86)"
    assert [t.text.strip() for t in browser.find_all('button[data-test="tab"]')] == TABS
    shoot(browser, tmp_path, "tunables")

    # 2. Tab switch: each tab shows its own fields with their current values.
    open_tab(browser, "Data sources")
    wait_loaded(browser, "kube_cluster_field")
    assert field(browser, "kube_audit_indexes") == "k8s" and field(browser, "auditd_sourcetypes") == "linux:audit,auditd"
    assert "time_window" not in visible_fields(browser)
    status = field(browser, "scope_status")
    assert "WARNING: Linux auditd (escape_auditd, used by the enabled linux analytic) found no events" in status, status
    shoot(browser, tmp_path, "data-sources")
    open_tab(browser, "Analytics")
    wait_loaded(browser, "kube_workload_host_access")
    checked = browser.run("return [...document.querySelectorAll('[data-test=\"control-group\"]')]"
                          ".filter(e => e.offsetParent !== null && e.querySelector('[aria-checked=\"true\"], "
                          "input[type=checkbox]:checked')).map(e => e.getAttribute('data-name'));")
    assert sorted(checked) == ["kube_workload_host_access", "linux_container_escape_chain"], checked
    shoot(browser, tmp_path, "analytics")
    open_tab(browser, "Logging")
    wait_loaded(browser, "loglevel")
    shoot(browser, tmp_path, "logging")
    open_tab(browser, "Tunables")
    wait_loaded(browser, "time_window")

    # 3. An invalid value: the page's own message names the fault, and nothing reaches the handler or splunkd.
    type_into(browser, "restricted_host_dirs", "Windows/System32")
    save(browser)
    message = ("Restricted host directories: each directory needs a drive letter and a slash (C:\\Windows) or a UNC "
               "server and share (\\\\server\\share); separate directories with commas.")
    browser.wait("the validation message", lambda: message in text(browser))
    shoot(browser, tmp_path, "invalid-value")
    assert [c for c in web.settings_calls if c[0] == "edit"] == []
    assert fake.posts("configs/") == [] and fake.posts("saved/") == []

    # 4. A valid save reaches the macros (a drive root is stored so that it reads back: "C:/").
    type_into(browser, "restricted_host_dirs", "C:/")
    type_into(browser, "time_window", "600")
    save(browser)
    browser.wait("the save to reach the macros", lambda: fake.macro("escape_time_window") == "600", timeout=60)
    browser.wait("the restricted directories macro", lambda: fake.macro("escape_restricted_host_dirs") == '"C:/"')
    assert macro_writes(fake) == {"escape_restricted_host_dirs": '"C:/"', "escape_time_window": "600"}
    assert fake.saved[CHAIN]["dispatch.earliest_time"] == "-80m@m"   # the chain's window moved with the time window
    # The page's own word on a save is UCC's toast; what exactly was written is in the macros (and in the error of
    # a failed save, step 5). The toast goes before the next step, so no screenshot shows a stale one.
    browser.wait("the saved toast", lambda: 'Updated "Tunables"' in text(browser))
    browser.wait("the saved toast to go", lambda: 'Updated "Tunables"' not in text(browser), timeout=60)

    # 5. A failed write is reported as it happened, and nothing stays changed.
    fake.fail[("POST", "configs/conf-macros/escape_allowed_kernel_modules")] = (500, "disk full")
    before = {m: fake.macro(m) for m in ("escape_time_window", "escape_allowed_kernel_modules")}
    type_into(browser, "time_window", "900")
    type_into(browser, "allowed_kernel_modules", "nvme_pci,lsi_mr3")
    save(browser)
    failure = ("Saving tunables failed: could not write escape_allowed_kernel_modules (disk full). Nothing was "
               "changed: escape_time_window and the tab's stored settings restored to the values from before the save.")
    browser.wait("the failure message", lambda: failure in text(browser), timeout=60)
    shoot(browser, tmp_path, "failed-write")
    assert {m: fake.macro(m) for m in before} == before
    del fake.fail[("POST", "configs/conf-macros/escape_allowed_kernel_modules")]

    # 6. A reload shows the saved values as stored, and saving the page as loaded writes no macro.
    browser.get(web.page())
    wait_loaded(browser, "time_window")
    assert field(browser, "time_window") == "600" and field(browser, "restricted_host_dirs") == "C:/"
    assert field(browser, "allowed_kernel_modules") == "nvme_pci"
    writes = len(fake.posts("configs/conf-macros/"))
    edits = len([c for c in web.settings_calls if c[0] == "edit"])
    save(browser)
    browser.wait("the save as loaded", lambda: len([c for c in web.settings_calls if c[0] == "edit"]) > edits,
                 timeout=60)
    browser.wait("the answer", lambda: "Save" in [b.text.strip() for b in browser.find_all("button")])
    assert len(fake.posts("configs/conf-macros/")) == writes

    # The page needed nothing the stand-ins do not implement, besides Splunk's own header and footer scripts; the one
    # error answered is the failed save of step 5.
    refused = [r for r in web.refused if not r[1].endswith(SPLUNK_CHROME)]
    assert refused == [("POST", SETTINGS + "/tunables", 500)], refused
