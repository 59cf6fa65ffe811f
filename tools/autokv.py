"""KV_MODE's automatic extractions: JSON (flattened to a.b and a{}, read only up to the extraction cutoff) and
key=value pairs. Used by the search-time evaluator (tools/searchtime.py) and the knowledge tests.
"""
import json
import re
from typing import Dict, List, Optional

JSON_EXTRACTION_CUTOFF = 5000  # limits.conf [spath] extraction_cutoff, in bytes of _raw


class _Incomplete(Exception):
    pass


class _JsonFlattener:
    """Walks JSON text and records every completed leaf as path -> values; stops quietly at the end of the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: Dict[str, List[str]] = {}

    def run(self) -> Dict[str, List[str]]:
        self._ws()
        if self.pos >= len(self.text) or self.text[self.pos] != "{":
            return {}
        try:
            self._value("")
        except _Incomplete:
            pass
        except ValueError:
            pass  # malformed JSON: keep what was read before the fault
        return self.out

    def _ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def _peek(self) -> str:
        if self.pos >= len(self.text):
            raise _Incomplete()
        return self.text[self.pos]

    def _emit(self, path: str, value: str) -> None:
        self.out.setdefault(path, []).append(value)

    def _value(self, path: str) -> None:
        self._ws()
        char = self._peek()
        if char == "{":
            self.pos += 1
            self._ws()
            if self._peek() == "}":
                self.pos += 1
                return
            while True:
                self._ws()
                if self._peek() != '"':
                    raise ValueError("object key expected")
                key = self._string()
                self._ws()
                if self._peek() != ":":
                    raise ValueError("':' expected")
                self.pos += 1
                self._value(key if not path else path + "." + key)
                self._ws()
                char = self._peek()
                self.pos += 1
                if char == "}":
                    return
                if char != ",":
                    raise ValueError("',' or '}' expected")
        elif char == "[":
            self.pos += 1
            self._ws()
            if self._peek() == "]":
                self.pos += 1
                return
            while True:
                self._value(path + "{}")
                self._ws()
                char = self._peek()
                self.pos += 1
                if char == "]":
                    return
                if char != ",":
                    raise ValueError("',' or ']' expected")
        elif char == '"':
            self._emit(path, self._string())
        else:
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos] not in ",]} \t\r\n":
                self.pos += 1
            if self.pos >= len(self.text):
                raise _Incomplete()  # a number or word cut by the end of the text is not complete
            token = self.text[start:self.pos]
            try:
                json.loads(token)
            except ValueError:
                raise ValueError("bad literal") from None
            self._emit(path, token)

    def _string(self) -> str:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text):
                raise _Incomplete()
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            self.pos += 1
            if char == '"':
                break
        if self.pos > len(self.text):
            raise _Incomplete()
        value: str = json.loads(self.text[start:self.pos])
        return value


def json_fields(raw: str, cutoff: Optional[int] = JSON_EXTRACTION_CUTOFF) -> Dict[str, List[str]]:
    """Automatic JSON extraction of raw: flattened fields, reading only the first `cutoff` bytes (None: all)."""
    text = raw
    if cutoff is not None:
        data = raw.encode("utf-8")
        if len(data) > cutoff:
            text = data[:cutoff].decode("utf-8", errors="ignore")
    return _JsonFlattener(text).run()


_AUTO_KV = re.compile(r'(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|([^\s,;"]+))')


def auto_kv_fields(raw: str) -> Dict[str, List[str]]:
    result: Dict[str, List[str]] = {}
    for match in _AUTO_KV.finditer(raw):
        key = match.group(1)
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if value and key not in result:
            result[key] = [value]
    return result
