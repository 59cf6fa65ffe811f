"""A small W3C WebDriver client for headless Chromium through chromedriver: only what the setup-page browser test does.

It speaks the W3C WebDriver protocol (JSON over HTTP, https://www.w3.org/TR/webdriver2/) to a chromedriver it starts on a
loopback port, so the tests need no Python package beyond the standard library (selenium would have to be added to the
shared development environment). Browser(...) starts chromedriver and one headless session; close() ends both.

find_browser() names the chromium and chromedriver binaries, installing Debian's `chromium` and `chromium-driver` with
apt-get when they are missing and that is possible (root, apt-get present); otherwise it returns the reason they are
not available, for the test to skip with.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of a web element reference
T = TypeVar("T")


class WebDriverError(Exception):
    pass


def find_browser() -> Union[Tuple[str, str], str]:
    """(chromium, chromedriver) paths, installing them with apt-get when missing; a reason string when impossible."""
    def found() -> Optional[Tuple[str, str]]:
        chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
        return (chromium, driver) if chromium and driver else None

    paths = found()
    if paths:
        return paths
    if not shutil.which("apt-get"):
        return "chromium or chromedriver is missing and there is no apt-get to install them"
    if os.geteuid() != 0:
        return "chromium or chromedriver is missing and installing them with apt-get needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if run.returncode != 0:
            return "installing chromium and chromium-driver failed: {}: {}".format(
                " ".join(command), (run.stderr or run.stdout).strip()[-500:])
    return found() or "apt-get installed chromium and chromium-driver, but the binaries are not on PATH"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Element:
    def __init__(self, browser: "Browser", ref: str) -> None:
        self.browser, self.ref = browser, ref

    def _call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        return self.browser.call(method, "/element/{}{}".format(self.ref, path), body)

    def click(self) -> None:
        self._call("POST", "/click", {})

    def clear(self) -> None:
        self._call("POST", "/clear", {})

    def type(self, text: str) -> None:
        self._call("POST", "/value", {"text": text})

    @property
    def text(self) -> str:
        return str(self._call("GET", "/text"))

    def prop(self, name: str) -> Any:
        return self._call("GET", "/property/" + name)

    def find(self, css: str) -> "Element":
        return Element(self.browser, self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])


class Browser:
    """One headless Chromium session. Every call fails with WebDriverError carrying chromedriver's message."""

    def __init__(self, chromium: str, chromedriver: str, log: Path, width: int = 1280, height: int = 1000) -> None:
        self.port = _free_port()
        self._log = log.open("w")
        self.driver = subprocess.Popen([chromedriver, "--port={}".format(self.port)], stdout=self._log,
                                       stderr=subprocess.STDOUT)
        self.base = "http://127.0.0.1:{}".format(self.port)
        self._wait_for_driver()
        options = {"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                                "--disable-dev-shm-usage", "--window-size={},{}".format(width, height),
                                                "--lang=en-US"]}
        answer = self._request("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = "/session/" + answer["sessionId"]

    def _wait_for_driver(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self._request("GET", "/status")
                return
            except (OSError, WebDriverError):
                time.sleep(0.1)
        raise WebDriverError("chromedriver did not answer on port {}".format(self.port))

    def _request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read().decode("utf-8"))["value"]
        except urllib.error.HTTPError as err:
            try:
                value = json.loads(err.read().decode("utf-8"))["value"]
                raise WebDriverError("{}: {}".format(value.get("error"), value.get("message", "")[:500])) from None
            except (ValueError, KeyError):
                raise WebDriverError("{} {}: HTTP {}".format(method, path, err.code)) from None

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        return self._request(method, self.session + path, body)

    def get(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    def find(self, css: str) -> Element:
        return Element(self, self.call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def find_all(self, css: str) -> List[Element]:
        return [Element(self, e[ELEMENT]) for e in self.call("POST", "/elements",
                                                               {"using": "css selector", "value": css})]

    def run(self, script: str, *args: Any) -> Any:
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path: Path, whole_page: bool = False) -> None:
        """A PNG of the viewport, or (whole_page) of the whole page: the window is resized to the page's height for
        the shot and back afterwards."""
        size = self.call("GET", "/window/rect")
        if whole_page:
            height = int(self.run("return document.documentElement.scrollHeight"))
            self.call("POST", "/window/rect", {"width": size["width"], "height": height + 120})
            time.sleep(0.5)
        try:
            path.write_bytes(base64.b64decode(self.call("GET", "/screenshot")))
        finally:
            if whole_page:
                self.call("POST", "/window/rect", {"width": size["width"], "height": size["height"]})

    def wait(self, what: str, until: Callable[[], Optional[T]], timeout: float = 30) -> T:
        """Poll `until` until it returns something truthy; fail naming `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: Optional[BaseException] = None
        while time.monotonic() < deadline:
            try:
                value = until()
                if value:
                    return value
            except WebDriverError as err:
                last = err
            time.sleep(0.2)
        raise AssertionError("timed out after {} s waiting for {}{}".format(
            timeout, what, " (last error: {})".format(last) if last else ""))

    def close(self) -> None:
        try:
            self._request("DELETE", self.session)
        except (OSError, WebDriverError, AttributeError):
            pass
        self.driver.terminate()
        try:
            self.driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait()
        self._log.close()
