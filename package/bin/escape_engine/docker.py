"""Docker: dockerd --debug lines ("Calling POST ..." and "form data: {...}") and `docker inspect` JSON.

A create body is joined to the container name of its "Calling POST /containers/create?name=..." line by the caller
(`escape_engine.inspect`), since the two are separate events.
"""
import json
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from . import gojson
from .specrules import Container, Workload, command_word, normalise_capability

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


def form_body(msg: str) -> Any:
    """The parsed body of a `form data: {...}` message (objects as gojson.Pairs, every key kept), None when the
    message is no form data or the body is no object; raises ValueError when it does not parse."""
    if not msg.startswith("form data: "):
        return None
    try:
        body = gojson.loads(msg[len("form data: "):])
    except ValueError as err:
        raise ValueError("dockerd form data is not valid JSON ({})".format(err)) from None
    return body if isinstance(body, gojson.Pairs) else None


def body_kind(body: Any) -> Optional[str]:
    """create, exec or volume (a `docker volume create` body), as dockerd's Go decoder would see the keys; else None."""
    if gojson.has_field(body, "Image") or gojson.has_field(body, "HostConfig"):
        return "create"
    if gojson.has_field(body, "Cmd") and gojson.has_field(body, "Privileged"):
        return "exec"
    if gojson.has_field(body, "DriverOpts") or gojson.has_field(body, "Driver"):
        return "volume"
    return None


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


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


# The fields of dockerd's structs that the rules read (moby api/types/container.HostConfig, mount.Mount, ...).
_STRINGS = "strings"
DEVICE = {"PathOnHost": "string", "PathInContainer": "string", "CgroupPermissions": "string"}
MOUNT = {"Type": "string", "Source": "string", "Target": "string", "ReadOnly": "bool",
         "BindOptions": {"Propagation": "string", "NonRecursive": "bool"},
         "VolumeOptions": {"NoCopy": "bool", "Labels": "map",
                           "DriverConfig": {"Name": "string", "Options": "map"}}}
HOST_CONFIG = {
    "Binds": _STRINGS, "Privileged": "bool", "CapAdd": _STRINGS, "CapDrop": _STRINGS, "SecurityOpt": _STRINGS,
    "PidMode": "string", "IpcMode": "string", "NetworkMode": "string", "UTSMode": "string", "UsernsMode": "string",
    "CgroupnsMode": "string", "Devices": [DEVICE], "DeviceCgroupRules": _STRINGS, "Mounts": [MOUNT],
    "MaskedPaths": _STRINGS, "ReadonlyPaths": _STRINGS, "VolumesFrom": _STRINGS,
}
# POST /containers/create: container.Config's fields (embedded) beside HostConfig and NetworkingConfig.
CREATE_BODY = {"Image": "string", "Cmd": "strslice", "Entrypoint": "strslice", "User": "string", "HostConfig": HOST_CONFIG,
               "Labels": "map"}
EXEC_BODY = {"Privileged": "bool", "Cmd": _STRINGS, "User": "string"}
VOLUME_BODY = {"Name": "string", "Driver": "string", "DriverOpts": "map", "Labels": "map"}
INSPECT = {"Id": "string", "Name": "string", "Path": "string", "Image": "string", "Config": {"Image": "string"}, "HostConfig": HOST_CONFIG,
           "Mounts": [{"Type": "string", "Source": "string", "Destination": "string", "RW": "bool"}],
           "State": {"Status": "string"}}

# moby's defaults (oci/defaults.go): a create that lists fewer leaves those paths readable or writable.
_KEY_MASKED = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware")
_KEY_READONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus")


def _security_opts(container: Container, options: List[Any], requested: bool) -> None:
    for option in options:
        if not isinstance(option, str):
            continue
        # moby parseSecurityOpt: "key=value", or the deprecated "key:value" when there is no "="
        separator = "=" if "=" in option else ":"
        key, _, value = option.partition(separator)
        key, value = key.strip().lower(), value.strip().lower()
        if key == "seccomp" and value == "unconfined":
            container.seccomp_unconfined = True
        elif key == "apparmor" and value == "unconfined":
            container.apparmor_unconfined = True
        elif requested and key == "label" and value in ("disable", "type:spc_t", "type:unconfined_t"):
            # (docker inspect shows label=disable for every privileged or host-PID/IPC container: an effect there)
            container.selinux_unconfined = True
        elif key == "systempaths" and value == "unconfined":
            container.proc_mount_unmasked = True
            container.proc_sys_writable = True
        elif key == "no-new-privileges" and value in ("false", "0"):
            container.allow_privilege_escalation = True


def _bind_volume(options: Dict[str, Any]) -> Optional[str]:
    """The host directory a local-driver volume binds (`type=none`, `o=bind`, `device=<dir>`), else None."""
    lowered = {str(k).lower(): v for k, v in options.items() if isinstance(v, str)}
    flags = [f.strip() for f in lowered.get("o", "").split(",")]
    if "bind" in flags or "rbind" in flags:
        device = lowered.get("device", "")
        return device if device.startswith("/") else None
    return None


def _host_config(workload: Workload, container: Container, host_config: Dict[str, Any],
                 requested: bool = True) -> None:
    """Read HostConfig; `requested`: from a create body (what the client asked for), not inspect's effective values
    (where CgroupnsMode is "host" by default on cgroup v1 hosts and SecurityOpt holds label=disable for every
    privileged, host-PID or host-IPC container)."""
    container.privileged = host_config.get("Privileged") is True
    container.capabilities = [normalise_capability(c) for c in _list(host_config.get("CapAdd")) if isinstance(c, str)]
    _security_opts(container, _list(host_config.get("SecurityOpt")), requested)
    # --security-opt systempaths=unconfined reaches dockerd as empty MaskedPaths / ReadonlyPaths (null: defaults)
    masked, read_only_paths = host_config.get("MaskedPaths"), host_config.get("ReadonlyPaths")
    if isinstance(masked, list) and not all(p in masked for p in _KEY_MASKED):
        container.proc_mount_unmasked = True
    if isinstance(read_only_paths, list) and not all(p in read_only_paths for p in _KEY_READONLY):
        container.proc_sys_writable = True
    workload.host_pid = _text(host_config.get("PidMode")).lower() == "host"
    workload.host_ipc = _text(host_config.get("IpcMode")).lower() == "host"
    workload.host_network = _text(host_config.get("NetworkMode")).lower() == "host"
    workload.host_uts = _text(host_config.get("UTSMode")).lower() == "host"
    workload.host_userns = _text(host_config.get("UsernsMode")).lower() == "host"
    workload.host_cgroupns = requested and _text(host_config.get("CgroupnsMode")).lower() == "host"
    for bind in _list(host_config.get("Binds")):
        if isinstance(bind, str) and bind.startswith("/"):
            source, _, rest = bind.partition(":")
            target, _, options = rest.partition(":")
            read_only = "ro" in options.split(",")
            workload.host_paths.append((source, "bind to " + (target or "?"), read_only))
        elif isinstance(bind, str) and bind:
            name, _, rest = bind.partition(":")
            target, _, options = rest.partition(":")
            workload.volumes.append((name, target or "?", "ro" in options.split(",")))
    for mount in _list(host_config.get("Mounts")):
        kind = _text(_dict(mount).get("Type")).lower()
        if kind == "bind":
            workload.host_paths.append((_text(mount.get("Source")), "mount to " + _text(mount.get("Target")),
                                        mount.get("ReadOnly") is True))
        elif kind == "volume":
            config = _dict(_dict(mount.get("VolumeOptions")).get("DriverConfig"))
            device = _bind_volume(_dict(config.get("Options")))
            if device is not None:
                workload.host_paths.append((device, "volume {} bound to {}".format(
                    _text(mount.get("Source")) or "(anonymous)", _text(mount.get("Target"))),
                    mount.get("ReadOnly") is True))
            elif _text(mount.get("Source")):
                workload.volumes.append((_text(mount.get("Source")), _text(mount.get("Target")) or "?",
                                         mount.get("ReadOnly") is True))
    for device in _list(host_config.get("Devices")):
        if _text(_dict(device).get("PathOnHost")):
            workload.devices.append(_text(device.get("PathOnHost")))
    workload.device_rules.extend(r for r in _list(host_config.get("DeviceCgroupRules")) if isinstance(r, str))


def _decoded(body: Any, schema: Dict[str, Any], workload: Workload) -> Dict[str, Any]:
    result = gojson.decode(body, schema)
    workload.duplicates.extend(result.duplicates)
    return result.value or {}


def create_workload(body: Any, name: str) -> Workload:
    """A container create body (docker run / docker create), decoded as dockerd decodes it."""
    workload = Workload("docker")
    workload.kind = "container"
    workload.name = name
    decoded = _decoded(body, CREATE_BODY, workload)
    container = Container(name, _text(decoded.get("Image")), "container")
    # dockerd runs Entrypoint + Cmd: an Entrypoint replaces the image's, an empty one ([] or --entrypoint "")
    # clears it so that Cmd runs; with no Entrypoint, Cmd are the image entrypoint's arguments (or its command
    # when the image has none: command_word judges a first word that is not a flag)
    entrypoint = decoded.get("Entrypoint")
    word, where = command_word(_list(entrypoint), _list(decoded.get("Cmd")), cleared=isinstance(entrypoint, list))
    if word:
        container.runs.append((word, "Entrypoint" if where == "command" else "Cmd"))
    host_config = decoded.get("HostConfig")
    if isinstance(host_config, dict):
        _host_config(workload, container, host_config)
    workload.containers.append(container)
    return workload


def exec_workload(body: Any, name: str) -> Workload:
    """An exec body (docker exec): only Privileged is an isolation setting there."""
    workload = Workload("docker")
    workload.kind = "exec"
    workload.name = name
    decoded = _decoded(body, EXEC_BODY, workload)
    container = Container(name, "", "exec")
    container.privileged = decoded.get("Privileged") is True
    workload.containers.append(container)
    return workload


def volume_workload(body: Any) -> Workload:
    """A `docker volume create` body: a local-driver volume that binds a host directory is a host path."""
    workload = Workload("docker")
    workload.kind = "volume"
    decoded = _decoded(body, VOLUME_BODY, workload)
    workload.name = _text(decoded.get("Name"))
    driver = _text(decoded.get("Driver")) or "local"
    device = _bind_volume(_dict(decoded.get("DriverOpts"))) if driver == "local" else None
    if device is not None:
        workload.host_paths.append((device, "volume " + (workload.name or "(unnamed)"), False))
    return workload


def inspect_workloads(text: str) -> List[Tuple[Workload, Dict[str, Any]]]:
    """`docker inspect` output: one object or an array of them. Raises ValueError when it is not inspect JSON."""
    try:
        data = gojson.loads(text)
    except ValueError as err:
        raise ValueError("docker inspect text is not valid JSON ({})".format(err)) from None
    items = data if isinstance(data, list) else [data]
    result = []
    for raw in items:
        workload = Workload("docker")
        item = _decoded(raw, INSPECT, workload) if isinstance(raw, gojson.Pairs) else {}
        if not isinstance(item.get("HostConfig"), dict):
            raise ValueError("docker inspect object without HostConfig")
        name = _text(item.get("Name")).lstrip("/")
        workload.kind = "container"
        workload.name = name
        container = Container(name, _text(_dict(item.get("Config")).get("Image")) or _text(item.get("Image")),
                              "container")
        container.image_id = _text(item.get("Image"))
        if _text(item.get("Path")):
            # inspect shows the resolved executable, the image's own entrypoint included (Config merges the image's)
            container.runs.append((_text(item.get("Path")), "Path"))
        workload.container_id = _text(item.get("Id"))
        _host_config(workload, container, item["HostConfig"], requested=False)
        for mount in _list(item.get("Mounts")):
            if isinstance(mount, dict) and _text(mount.get("Type")).lower() == "bind":
                entry = (_text(mount.get("Source")), "mount to " + _text(mount.get("Destination")),
                         mount.get("RW") is False)
                if entry[0] and not any(p == entry[0] for p, _, _ in workload.host_paths):
                    workload.host_paths.append(entry)
        workload.containers.append(container)
        result.append((workload, item))
    return result


_DENIED = re.compile(r"^AuthZRequest for (POST) (/\S*) returned error: authorization denied by plugin")


def denial(msg: str) -> Optional[Tuple[str, str]]:
    """('create', name) or ('exec', container) when an authorization plugin refused that call."""
    match = _DENIED.match(msg)
    if match is None:
        return None
    return api_call("Calling {} {}".format(match.group(1), match.group(2)))
