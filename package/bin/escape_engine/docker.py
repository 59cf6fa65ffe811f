"""Docker: dockerd --debug lines ("Calling POST ..." and "form data: {...}") and `docker inspect` JSON.

A create body is joined to the container name of its "Calling POST /containers/create?name=..." line by the caller
(`escape_engine.inspect`), since the two are separate events.
"""
import json
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from .specrules import Container, Workload, normalise_capability

_TIME = re.compile(r'(?:^|\s)time="?([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?'
                   r'(Z|[+-][0-9]{2}:[0-9]{2})"?')
_MSG = re.compile(r'(?:^|\s)msg="')
_CALL = re.compile(r"^Calling (POST|GET|PUT|DELETE|HEAD) (/\S*)$")
_API_PATH = re.compile(r"^(?:/v[0-9.]+)?(/containers/.*)$")


_GO_PLAIN = re.compile(r'[^"\\]+')
_GO_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
                      "v": "\v", "'": "'"}
_GO_HEX_WIDTHS = {"x": 2, "u": 4, "U": 8}
_HEX = frozenset("0123456789abcdefABCDEF")


def _unquote_go(text: str, start: int) -> Optional[str]:
    """Read the Go-quoted string whose body starts at text[start] (after the opening quote)."""
    out: List[str] = []
    i = start
    while i < len(text):
        plain = _GO_PLAIN.match(text, i)  # copy a run without quotes or escapes at once (form data is long)
        if plain is not None:
            out.append(plain.group())
            i = plain.end()
            continue
        if text[i] == '"':
            return "".join(out)
        if i + 1 >= len(text):
            return None
        escape = text[i + 1]
        if escape in _GO_SIMPLE_ESCAPES:
            out.append(_GO_SIMPLE_ESCAPES[escape])
            i += 2
            continue
        width = _GO_HEX_WIDTHS.get(escape)
        if width is None:
            return None
        digits = text[i + 2:i + 2 + width]
        if len(digits) != width or not all(c in _HEX for c in digits):  # int(x, 16) would take "+1", "1_0", "٣"
            return None
        try:
            out.append(chr(int(digits, 16)))
        except (ValueError, OverflowError):  # a \U value beyond any code point
            return None
        i += 2 + width
    return None


def message(text: str) -> Optional[str]:
    """The logrus `msg` value of a dockerd log line, unquoted; None when the line has none."""
    match = _MSG.search(text)
    if match is None:
        return None
    return _unquote_go(text, match.end())


def line_time(text: str) -> Optional[float]:
    """Epoch seconds of the logrus `time=` field; None when there is none or it is no real date (month 13)."""
    match = _TIME.search(text)
    if match is None:
        return None
    base, fraction, zone = match.group(1), match.group(2) or "", match.group(3)
    try:
        stamp = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    offset = 0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    seconds = stamp.replace(tzinfo=timezone.utc).timestamp() - offset
    return seconds + (float("0" + fraction) if fraction else 0.0)


def api_call(msg: str) -> Optional[Tuple[str, str]]:
    """('create', name) or ('exec', container) for the Calling line of a create or exec; name may be ''."""
    match = _CALL.match(msg)
    if match is None or match.group(1) != "POST":
        return None
    try:
        parts = urlsplit(match.group(2))
    except ValueError:  # "//[..." reads as a malformed IPv6 host
        return None
    path_match = _API_PATH.match(parts.path)
    if path_match is None:
        return None
    segments = path_match.group(1).split("/")
    if segments[1:3] == ["containers", "create"] and len(segments) == 3:
        names = parse_qs(parts.query).get("name", [""])
        return "create", names[0]
    if len(segments) == 4 and segments[3] == "exec":
        return "exec", unquote(segments[2])
    return None


def form_body(msg: str) -> Optional[Dict[str, Any]]:
    """The JSON body of a `form data: {...}` message; raises ValueError when it does not parse."""
    if not msg.startswith("form data: "):
        return None
    try:
        body = json.loads(msg[len("form data: "):])
    except (ValueError, RecursionError) as err:  # RecursionError: JSON nested too deeply
        raise ValueError("dockerd form data is not valid JSON ({})".format(err)) from None
    return body if isinstance(body, dict) else None


def is_event(text: str) -> bool:
    """A `docker events --format '{{json .}}'` line (Type, Action, Actor)."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and "Action" in data and isinstance(data.get("Actor"), dict)


def _list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _host_config(workload: Workload, container: Container, host_config: Dict[str, Any]) -> None:
    container.privileged = host_config.get("Privileged") is True
    container.capabilities = [normalise_capability(c) for c in _list(host_config.get("CapAdd")) if isinstance(c, str)]
    for option in _list(host_config.get("SecurityOpt")):
        if not isinstance(option, str):
            continue
        key, _, value = option.replace(":", "=", 1).partition("=")
        if key.strip().lower() == "seccomp" and value.strip().lower() == "unconfined":
            container.seccomp_unconfined = True
        if key.strip().lower() == "apparmor" and value.strip().lower() == "unconfined":
            container.apparmor_unconfined = True
        if key.strip().lower() == "no-new-privileges" and value.strip().lower() in ("false", "0"):
            container.allow_privilege_escalation = True
    workload.host_pid = _text(host_config.get("PidMode")).lower() == "host"
    workload.host_ipc = _text(host_config.get("IpcMode")).lower() == "host"
    workload.host_network = _text(host_config.get("NetworkMode")).lower() == "host"
    for bind in _list(host_config.get("Binds")):
        if isinstance(bind, str) and bind.startswith("/"):
            source, _, rest = bind.partition(":")
            target, _, options = rest.partition(":")
            read_only = "ro" in options.split(",")
            workload.host_paths.append((source, "bind to " + (target or "?"), read_only))
    for mount in _list(host_config.get("Mounts")):
        if isinstance(mount, dict) and _text(mount.get("Type")).lower() == "bind":
            workload.host_paths.append((_text(mount.get("Source")), "mount to " + _text(mount.get("Target")),
                                        mount.get("ReadOnly") is True))
    for device in _list(host_config.get("Devices")):
        if isinstance(device, dict) and _text(device.get("PathOnHost")):
            workload.devices.append(_text(device.get("PathOnHost")))


def create_workload(body: Dict[str, Any], name: str) -> Workload:
    """A container create body (docker run / docker create)."""
    workload = Workload("docker")
    workload.kind = "container"
    workload.name = name
    container = Container(name, _text(body.get("Image")), "container")
    host_config = body.get("HostConfig")
    if isinstance(host_config, dict):
        _host_config(workload, container, host_config)
    workload.containers.append(container)
    return workload


def exec_workload(body: Dict[str, Any], name: str) -> Workload:
    """An exec body (docker exec): only Privileged is an isolation setting there."""
    workload = Workload("docker")
    workload.kind = "exec"
    workload.name = name
    container = Container(name, "", "exec")
    container.privileged = body.get("Privileged") is True
    workload.containers.append(container)
    return workload


def inspect_workloads(text: str) -> List[Tuple[Workload, Dict[str, Any]]]:
    """`docker inspect` output: one object or an array of them. Raises ValueError when it is not inspect JSON."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:  # RecursionError: JSON nested too deeply
        raise ValueError("docker inspect text is not valid JSON ({})".format(err)) from None
    items = data if isinstance(data, list) else [data]
    result = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("HostConfig"), dict):
            raise ValueError("docker inspect object without HostConfig")
        name = _text(item.get("Name")).lstrip("/")
        config_value = item.get("Config")
        config: Dict[str, Any] = config_value if isinstance(config_value, dict) else {}
        workload = Workload("docker")
        workload.kind = "container"
        workload.name = name
        container = Container(name, _text(config.get("Image")) or _text(item.get("Image")), "container")
        _host_config(workload, container, item["HostConfig"])
        for mount in _list(item.get("Mounts")):
            if isinstance(mount, dict) and _text(mount.get("Type")).lower() == "bind":
                entry = (_text(mount.get("Source")), "mount to " + _text(mount.get("Destination")),
                         mount.get("RW") is False)
                if entry[0] and not any(p == entry[0] for p, _, _ in workload.host_paths):
                    workload.host_paths.append(entry)
        workload.containers.append(container)
        result.append((workload, item))
    return result
