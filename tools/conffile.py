"""A strict reader for Splunk .conf files: stanzas, `key = value`, `#` comments, backslash-continued lines.

Unlike configparser it keeps Splunk's rules: keys are case-sensitive, a value continues onto the next line when a
line ends in a backslash (the newline is kept), and text before the first stanza belongs to the `default` stanza.
It refuses what Splunk would silently merge or ignore, so a duplicate stanza or key is an error, not a surprise.
"""
from pathlib import Path
from typing import Dict, List, Tuple

Stanzas = Dict[str, Dict[str, str]]


class ConfError(ValueError):
    pass


def parse_text(text: str, name: str = "<conf>") -> Stanzas:
    stanzas: Stanzas = {}
    order: List[Tuple[str, int]] = []
    current = "default"
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index]
        index += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise ConfError("{}:{}: stanza header without closing ']': {!r}".format(name, number, stripped))
            current = stripped[1:-1]
            if current in stanzas:
                raise ConfError("{}:{}: stanza [{}] appears twice".format(name, number, current))
            stanzas[current] = {}
            order.append((current, number))
            continue
        if "=" not in line:
            raise ConfError("{}:{}: line is neither a stanza, a comment nor key = value: {!r}".format(
                name, number, stripped))
        key, value = line.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfError("{}:{}: empty key".format(name, number))
        value = value.strip()
        while value.endswith("\\") and index < len(lines):
            value = value[:-1] + "\n" + lines[index].strip()
            index += 1
        section = stanzas.setdefault(current, {})
        if key in section:
            raise ConfError("{}:{}: key {!r} appears twice in stanza [{}]".format(name, number, key, current))
        section[key] = value
    return stanzas


def parse(path: Path) -> Stanzas:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfError("{}: not UTF-8: {}".format(path, err)) from None
    return parse_text(text.replace("\r\n", "\n"), str(path))
