"""A strict loopback stand-in for the few splunkd REST endpoints the setup page's handler and the stateful commands
call.

Only under /servicesNS/nobody/TA_escape_to_host/, with an `Authorization: Splunk <key>` header:
- GET  configs/conf-<file>[/<stanza>]          (output_mode=json; count on the collection)
- POST configs/conf-ta_escape_to_host_settings/<stanza>   keys the stanza already has
- POST configs/conf-macros/<macro>             definition only; the stanza must exist (shipped in default/)
- GET  saved/searches/<name>, POST saved/searches/<name>  disabled (0|1) and dispatch.earliest_time only
- POST search/jobs exec_mode=oneshot           only `| tstats count where `<macro>` earliest=-24h latest=now`,
                                               answered from the counts the test sets
- GET  storage/collections/data/<collection>   every document (output_mode=json; no query, sort or paging)
- POST storage/collections/data/<collection>/batch_save   a JSON list of at most 1,000 documents with `_key`;
                                               inserts or replaces by `_key`. Only the collections the test declares.
Anything else answers 404 (unknown path, conf file or stanza) or 400 (unknown or missing parameter), as JSON
`{"messages": [{"type": "ERROR", "text": ...}]}`. Every request is logged; the test can make a path fail, always
(`fail`) or after it succeeded a number of times (`fail_after`: a restore that fails after the write went through).
Responses follow splunkd's JSON shape: {"entry": [{"name", "content", "acl"}]}. It does not emulate anything else:
no layering of default/local, no ACL checks, no search language beyond the one tstats form.
"""
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Mapping, Optional, Tuple

from escape_io.store import matches

PREFIX = "/servicesNS/nobody/TA_escape_to_host/"
SESSION_KEY = "test-session-key"
_TSTATS = re.compile(r"\| tstats count where `(escape_[a-z_]+)` earliest=-24h latest=now")


class HTTPFailure(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class FakeSplunkd:
    def __init__(self, confs: Mapping[str, Mapping[str, Mapping[str, str]]],
                 saved_searches: Mapping[str, Mapping[str, str]], counts: Optional[Mapping[str, int]] = None,
                 collections: Optional[Mapping[str, List[Dict[str, Any]]]] = None) -> None:
        self.collections: Dict[str, List[Dict[str, Any]]] = {n: [dict(d) for d in docs]
                                                              for n, docs in (collections or {}).items()}
        self.confs: Dict[str, Dict[str, Dict[str, str]]] = {f: {s: dict(k) for s, k in st.items()}
                                                            for f, st in confs.items()}
        self.saved: Dict[str, Dict[str, str]] = {n: dict(k) for n, k in saved_searches.items()}
        self.counts: Dict[str, int] = dict(counts or {})
        self.log: List[Tuple[str, str, Dict[str, str]]] = []
        self.requests: List[Tuple[str, str]] = []  # every request as it came, refused ones too: (method, URL path)
        self.fail: Dict[Tuple[str, str], Tuple[int, str]] = {}
        self.fail_after: Dict[Tuple[str, str], Tuple[int, int, str]] = {}  # (method, path) -> (successes, status, text)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return "http://127.0.0.1:{}".format(self._server.server_address[1])

    def __enter__(self) -> "FakeSplunkd":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # what the tests look at
    def posts(self, prefix: str = "") -> List[Tuple[str, Dict[str, str]]]:
        return [(p, params) for m, p, params in self.log if m == "POST" and p.startswith(prefix)]

    def macro(self, name: str) -> str:
        return self.confs["macros"][name]["definition"]

    # request handling
    def handle(self, method: str, parts: List[str], params: Dict[str, str], body: str = "") -> Any:
        path = "/".join(parts)
        with self._lock:
            self.log.append((method, path, dict(params)))
            if (method, path) in self.fail:
                raise HTTPFailure(*self.fail[(method, path)])
            if (method, path) in self.fail_after:
                successes, status, text = self.fail_after[(method, path)]
                if successes <= 0:
                    raise HTTPFailure(status, text)
                self.fail_after[(method, path)] = (successes - 1, status, text)
            if parts[0] == "configs" and len(parts) in (2, 3) and parts[1].startswith("conf-"):
                return self._conf(method, parts[1][len("conf-"):], parts[2] if len(parts) == 3 else None, params)
            if parts[:2] == ["saved", "searches"] and len(parts) == 3:
                return self._saved(method, parts[2], params)
            if parts == ["search", "jobs"] and method == "POST":
                return self._oneshot(params)
            if parts[:3] == ["storage", "collections", "data"] and len(parts) in (4, 5):
                return self._kvstore(method, parts[3], parts[4] if len(parts) == 5 else None, params, body)
            raise HTTPFailure(404, "Not Found: {} {}".format(method, path))

    @staticmethod
    def _only(params: Dict[str, str], allowed: Tuple[str, ...], required: Tuple[str, ...] = ()) -> None:
        unknown = sorted(set(params) - set(allowed) - {"output_mode"})
        if unknown:
            raise HTTPFailure(400, 'Argument "{}" is not supported by this handler.'.format(unknown[0]))
        missing = [r for r in required if r not in params]
        if missing:
            raise HTTPFailure(400, 'Missing argument "{}".'.format(missing[0]))
        if params.get("output_mode", "json") != "json":
            raise HTTPFailure(400, "only output_mode=json is implemented")

    @staticmethod
    def _entry(name: str, content: Mapping[str, Any]) -> Dict[str, Any]:
        return {"name": name, "content": dict(content),
                "acl": {"app": "TA_escape_to_host", "owner": "nobody", "sharing": "app", "can_write": True,
                        "perms": {"read": ["*"], "write": ["admin", "sc_admin"]}}}

    def _conf(self, method: str, conf: str, stanza: Optional[str], params: Dict[str, str]) -> Dict[str, Any]:
        if conf not in self.confs:
            raise HTTPFailure(404, "Not Found: no conf file {}".format(conf))
        stanzas = self.confs[conf]
        if stanza is None:
            if method != "GET":
                raise HTTPFailure(404, "creating stanzas is not implemented")
            self._only(params, ("count",))
            return {"entry": [self._entry(n, c) for n, c in stanzas.items()]}
        if stanza not in stanzas:
            raise HTTPFailure(404, "Not Found: [{}] in {}.conf".format(stanza, conf))
        if method == "GET":
            self._only(params, ())
        else:
            allowed = ("definition",) if conf == "macros" else tuple(stanzas[stanza])
            self._only(params, allowed, ("definition",) if conf == "macros" else ())
            stanzas[stanza].update({k: v for k, v in params.items() if k != "output_mode"})
        return {"entry": [self._entry(stanza, stanzas[stanza])]}

    def _saved(self, method: str, name: str, params: Dict[str, str]) -> Dict[str, Any]:
        if name not in self.saved:
            raise HTTPFailure(404, "Not Found: saved search {}".format(name))
        if method == "POST":
            self._only(params, ("disabled", "dispatch.earliest_time"))
            if "disabled" in params and params["disabled"] not in ("0", "1"):
                raise HTTPFailure(400, "disabled must be 0 or 1")
            self.saved[name].update({k: v for k, v in params.items() if k != "output_mode"})
        else:
            self._only(params, ())
        content = dict(self.saved[name])
        content["disabled"] = content.get("disabled", "1") == "1"  # splunkd's JSON carries a boolean
        return {"entry": [self._entry(name, content)]}

    def _oneshot(self, params: Dict[str, str]) -> Dict[str, Any]:
        self._only(params, ("exec_mode", "search"), ("exec_mode", "search"))
        match = _TSTATS.fullmatch(params["search"])
        if params["exec_mode"] != "oneshot" or not match or match.group(1) not in self.counts:
            raise HTTPFailure(400, "search not implemented by the stand-in: {!r}".format(params["search"]))
        return {"results": [{"count": str(self.counts[match.group(1)])}]}

    def _kvstore(self, method: str, name: str, action: Optional[str], params: Dict[str, str], body: str) -> Any:
        if name not in self.collections:
            raise HTTPFailure(404, "Not Found: no collection {}".format(name))
        documents = self.collections[name]
        if method == "GET" and action is None:
            # the data endpoint's query, sort, skip and limit (the KV store evaluates them; here escape_io's own
            # evaluation of the operators the add-on uses, so this checks what is asked, not the evaluation)
            self._only(params, ("query", "sort", "skip", "limit"))
            selected = [d for d in documents if matches(d, json.loads(params.get("query") or "{}"))]
            if params.get("sort", "_key") != "_key":
                raise HTTPFailure(400, "the stand-in sorts by _key only")
            selected.sort(key=lambda d: str(d.get("_key", "")))
            skip, limit = int(params.get("skip", "0")), int(params.get("limit", "0"))
            return selected[skip:skip + limit] if limit else selected[skip:]
        if method == "DELETE" and action is None:  # only the {field: {"$lt": number}} query escape_io.store sends
            self._only(params, ("query",), ("query",))
            query = json.loads(params["query"])
            ((field, condition),) = query.items()
            below = condition["$lt"]
            documents[:] = [d for d in documents if not (isinstance(d.get(field), (int, float)) and d[field] < below)]
            return {}
        if method != "POST" or action != "batch_save" or params:
            raise HTTPFailure(400, "not implemented by the stand-in: {} {}/{}".format(method, name, action))
        batch = json.loads(body)
        if not isinstance(batch, list) or not 0 < len(batch) <= 1000:
            raise HTTPFailure(400, "batch_save takes a JSON list of 1 to 1,000 documents")
        for document in batch:
            if not isinstance(document, dict) or not isinstance(document.get("_key"), str):
                raise HTTPFailure(400, "every document needs a _key (the stand-in generates none)")
            documents[:] = [d for d in documents if d["_key"] != document["_key"]] + [document]
        return [d["_key"] for d in batch]

    def _handler_class(self) -> type:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                url = urllib.parse.urlsplit(self.path)
                fake.requests.append((method, url.path))
                params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                body = ""
                if method == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length).decode("utf-8")
                    if self.headers.get("Content-Type") != "application/json":
                        params.update(urllib.parse.parse_qsl(body, keep_blank_values=True))
                try:
                    if self.headers.get("Authorization") != "Splunk " + SESSION_KEY:
                        raise HTTPFailure(401, "call not properly authenticated")
                    if not url.path.startswith(PREFIX):
                        raise HTTPFailure(404, "Not Found: {}".format(url.path))
                    parts = [urllib.parse.unquote(p) for p in url.path[len(PREFIX):].split("/")]
                    status, payload = 200, fake.handle(method, parts, params, body)
                except HTTPFailure as failure:
                    status, payload = failure.status, {"messages": [{"type": "ERROR", "text": failure.text}]}
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler
