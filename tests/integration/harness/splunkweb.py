"""A strict loopback stand-in for the splunkweb side of the setup page: what the built UCC front end loads and calls.

It serves, on 127.0.0.1 only, under the locale /en-US:
- GET app/TA_escape_to_host/<view>        the view's template from the built app (default/data/ui/views/<view>.xml
                                          names appserver/templates/base.html, which has no Mako markup to render);
                                          sets splunkweb's CSRF cookie splunkweb_csrf_token_8000
- GET config?autoload=1                  JavaScript that sets window.$C (the keys @splunk/splunk-utils reads)
- GET static/@<build>/js/i18n.js         JavaScript: identity gettext/ungettext/i18n_register (English, untranslated)
- GET i18ncatalog?autoload=1             JavaScript: an empty catalogue
- GET static/@<build>/app/TA_escape_to_host/<path>   a file under the built appserver/static/
- POST splunkd/__raw/services/search/jobs  only the page footer's `| rest services/apps/local/TA_escape_to_host
                                          splunk_server=local | fields build`, then GETs of that job's status
                                          (search/jobs?id=<sid>&count=1) and results (search/v2/jobs/<sid>/results),
                                          answered done with default/app.conf's build
- GET|POST splunkd/__raw/servicesNS/nobody/TA_escape_to_host/TA_escape_to_host_settings/<tab>
                                         the settings endpoint: each request runs the built handler in its own process
                                         (SettingsClient, as splunkd runs it) against the FakeSplunkd the handler tests
                                         use; a POST must carry X-Splunk-Form-Key equal to the CSRF cookie.
The endpoint answers like splunkd: {"entry": [{"name", "content", "acl"}]}; a handler error is HTTP 500 with
{"messages": [{"type": "ERROR", "text": 'Unexpected error "<class ...RestError>" from python handler: "<error>". See
splunkd.log/python.log for more details.'}]}, the text the UCC page parses. Anything else answers 404 and is listed in
`refused` (a test asserts the page needed nothing more). Not emulated: authentication and login, other views,
roles and capabilities, other locales, splunkweb's own settings.
"""
import json
import mimetypes
import re
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .setup_app import SettingsClient

LOCALE = "en-US"
PORT_LABEL = "8000"  # $C.MRSPARKLE_PORT_NUMBER: names the CSRF cookie
APP = "TA_escape_to_host"
SETTINGS = "/{}/splunkd/__raw/servicesNS/nobody/{}/{}_settings".format(LOCALE, APP, APP)
_STATIC_APP = re.compile(r"/{}/static/@[^/]+/app/{}/(.+)".format(LOCALE, APP))
_STATIC_I18N = re.compile(r"/{}/static/@[^/]+/js/i18n\.js".format(LOCALE))
_VIEW = re.compile(r"/{}/app/{}/([a-z_]+)".format(LOCALE, APP))
_TEMPLATE = re.compile(r'<view template="{}:/templates/([a-z_]+\.html)" type="html"'.format(APP))

JOBS = "/{}/splunkd/__raw/services/search/jobs".format(LOCALE)
FOOTER_SEARCH = "| rest services/apps/local/{} splunk_server=local | fields build".format(APP)
FOOTER_SID = "stand-in-footer"
RESULTS = "/{}/splunkd/__raw/services/search/v2/jobs/{}/results".format(LOCALE, FOOTER_SID)

I18N_JS = """window.gettext = window._ = function (s) { return s; };
window.ungettext = function (one, many, n) { return n === 1 ? one : many; };
window.i18n_register = function () {};
"""


class Reply(Exception):
    def __init__(self, status: int, body: bytes, content_type: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(status)
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers or {}


def _json(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode("utf-8"), "application/json; charset=UTF-8")


class FakeSplunkweb:
    def __init__(self, app: Path, client: SettingsClient) -> None:
        self.app = app
        self.client = client
        self.csrf = uuid.uuid4().hex
        self.requests: List[Tuple[str, str]] = []   # (method, path) of every request
        self.refused: List[Tuple[str, str, int]] = []  # (method, path, status) of every request answered with an error
        self.settings_calls: List[Tuple[str, str, Dict[str, str]]] = []  # (action, tab, data) handed to the handler
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return "http://127.0.0.1:{}".format(self._server.server_address[1])

    def page(self, view: str = "configuration", tab: Optional[str] = None) -> str:
        return "{}/{}/app/{}/{}{}".format(self.uri, LOCALE, APP, view, "?tab=" + tab if tab else "")

    def __enter__(self) -> "FakeSplunkweb":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the routes ---------------------------------------------------------------------------------------------------

    def route(self, method: str, url: urllib.parse.SplitResult, headers: Any, body: bytes) -> Reply:
        path = url.path
        if method == "GET":
            view = _VIEW.fullmatch(path)
            if view:
                return self._view(view.group(1))
            if path == "/{}/config".format(LOCALE):
                return Reply(200, self._config_js().encode("utf-8"), "application/javascript")
            if _STATIC_I18N.fullmatch(path):
                return Reply(200, I18N_JS.encode("utf-8"), "application/javascript")
            if path == "/{}/i18ncatalog".format(LOCALE):
                return Reply(200, b"/* no translations: en-US */\n", "application/javascript")
            static = _STATIC_APP.fullmatch(path)
            if static:
                return self._static(static.group(1))
        if path.startswith(SETTINGS + "/"):
            return self._settings(method, path[len(SETTINGS) + 1:], url.query, headers, body)
        if path.startswith(JOBS):
            return self._footer_job(method, path[len(JOBS):], url.query, headers, body)
        if path == RESULTS and method == "GET":
            return self._footer_results(url.query)
        return _json(404, {"messages": [{"type": "ERROR", "text": "Not Found: {} {}".format(method, path)}]})

    def _view(self, view: str) -> Reply:
        xml = self.app / "default" / "data" / "ui" / "views" / (view + ".xml")
        template = _TEMPLATE.search(xml.read_text(encoding="utf-8")) if xml.is_file() else None
        if template is None:
            return _json(404, {"messages": [{"type": "ERROR", "text": "no HTML-template view " + view}]})
        text = (self.app / "appserver" / "templates" / template.group(1)).read_text(encoding="utf-8")
        if "${" in text or "<%" in text:
            raise AssertionError("the template uses Mako markup, which this stand-in does not render")
        cookie = "splunkweb_csrf_token_{}={}; Path=/".format(PORT_LABEL, self.csrf)
        return Reply(200, text.encode("utf-8"), "text/html; charset=UTF-8", {"Set-Cookie": cookie})

    def _config_js(self) -> str:
        config = {"SPLUNKD_PATH": "/{}/splunkd/__raw".format(LOCALE), "LOCALE": LOCALE, "MRSPARKLE_ROOT_PATH": "",
                  "MRSPARKLE_PORT_NUMBER": PORT_LABEL, "USERNAME": "admin", "APP": APP, "VERSION_LABEL": "10.0.0",
                  "BUILD_NUMBER": "stand-in", "BUILD_PUSH_NUMBER": 0, "APP_BUILD": 0, "SERVER_ZONEINFO": "",
                  "SPLUNK_UI_THEME": "light"}
        return "window.$C = {};\n".format(json.dumps(config))

    def _static(self, relative: str) -> Reply:
        root = (self.app / "appserver" / "static").resolve()
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            return _json(404, {"messages": [{"type": "ERROR", "text": "Not Found: static " + relative}]})
        kind = "application/javascript" if path.suffix == ".js" else (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        return Reply(200, path.read_bytes(), kind)

    def _footer_job(self, method: str, rest: str, query: str, headers: Any, body: bytes) -> Reply:
        """The one search the page runs (its footer's build time), answered from default/app.conf's build."""
        if method == "POST" and rest == "":
            params = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            if headers.get("X-Splunk-Form-Key") != self.csrf:
                return _json(401, {"messages": [{"type": "ERROR", "text": "missing or wrong X-Splunk-Form-Key"}]})
            if params.get("search") != FOOTER_SEARCH:
                return _json(400, {"messages": [{"type": "ERROR", "text": "search not implemented by the stand-in: "
                                                 "{!r}".format(params.get("search"))}]})
            return _json(201, {"sid": FOOTER_SID})
        status_query = dict(urllib.parse.parse_qsl(query)) == {"output_mode": "json", "id": FOOTER_SID, "count": "1"}
        if method == "GET" and (rest == "/" + FOOTER_SID or (rest == "" and status_query)):
            return _json(200, {"entry": [{"name": FOOTER_SID, "content": {
                "sid": FOOTER_SID, "dispatchState": "DONE", "isDone": True, "isFailed": False, "resultCount": 1,
                "doneProgress": 1}}]})
        return _json(404, {"messages": [{"type": "ERROR", "text": "Not Found: {} search/jobs{}".format(method, rest)}]})

    def _footer_results(self, query: str) -> Reply:
        params = dict(urllib.parse.parse_qsl(query))
        if params.get("output_mode", "json") != "json":
            return _json(400, {"messages": [{"type": "ERROR", "text": "only output_mode=json"}]})
        build = re.search(r"^build = (\S+)$", (self.app / "default" / "app.conf").read_text(), re.MULTILINE)
        return _json(200, {"results": [{"build": build.group(1) if build else ""}], "fields": [{"name": "build"}],
                           "messages": [], "init_offset": 0, "preview": False})

    def _settings(self, method: str, tab: str, query: str, headers: Any, body: bytes) -> Reply:
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if params.pop("output_mode", "json") != "json" or "/" in tab:
            return _json(400, {"messages": [{"type": "ERROR", "text": "only output_mode=json on one tab"}]})
        if method == "POST":
            if headers.get("X-Splunk-Form-Key") != self.csrf:
                return _json(401, {"messages": [{"type": "ERROR", "text": "missing or wrong X-Splunk-Form-Key"}]})
            params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            params.pop("output_mode", None)
            action = "edit"
        elif method == "GET" and not params:
            action = "list"
        else:
            return _json(400, {"messages": [{"type": "ERROR", "text": "not implemented: {} {}".format(method, query)}]})
        self.settings_calls.append((action, tab, dict(params)))
        result = self.client.request(action, tab, params)
        if "error" in result:
            text = ('Unexpected error "<class \'splunktaucclib.rest_handler.error.RestError\'>" from python handler: '
                    '"{}". See splunkd.log/python.log for more details.'.format(result["error"]))
            return _json(500, {"messages": [{"type": "ERROR", "text": text}]})
        entries = [{"name": name, "content": content,
                    "acl": {"app": APP, "owner": "nobody", "sharing": "app", "can_write": True}}
                   for name, content in result["entries"].items()]
        return _json(200, {"entry": entries, "messages": []})

    def _handler_class(self) -> type:
        web = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                url = urllib.parse.urlsplit(self.path)
                web.requests.append((method, url.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    reply = web.route(method, url, self.headers, body)
                except Reply as early:
                    reply = early
                except Exception as exc:  # noqa: BLE001  a stand-in fault is an error page, never a hang
                    reply = _json(500, {"messages": [{"type": "ERROR", "text": "stand-in fault: {!r}".format(exc)}]})
                if reply.status >= 400:
                    web.refused.append((method, url.path, reply.status))
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser navigated away before the answer arrived

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler
