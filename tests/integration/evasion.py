"""The evasion corpus' mutation layer (issue 15, "the attacker writes the logs"): transforms of REAL sample files.

Each transform takes a sample's text and its sourcetype and returns the text changed the way an attacker inside a
container (or with create rights) can change what gets logged, or None when it does not fit the sample (nothing of
what it changes is there). Evasion transforms keep the attack an attack: the detection must still fire at the same
severity. Benign transforms keep benign data benign: a silent sample must stay silent.

Nothing here is invented data: every transform rewrites events the sample already holds. The transforms of host
event logs (Linux audit, Windows, ESXi) are in tests/integration/evasion_hosts.py.
"""
import json
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from tests.integration.evasion_hosts import (
    PAD,
    _changed,
    _lines,
    esxi_extra_whitespace,
    esxi_padded_shell,
    runtime_named,
    shell_legal_paths,
    split_argv,
    windows_padded_command_line,
    windows_path_tricks,
)

Transform = Callable[[str, str], Optional[str]]
DOCKER_ALLOWLISTED = "amazon/amazon-ecs-agent:latest"  # a local tag of the shipped docker.io/amazon/amazon-ecs-agent row
KUBE_AGENT = ("kube-system", "calico-node", "calico/node:v3.26.1")  # shipped row docker.io/calico/node, local tag


# ------------------------------------------------------------------------------------------------ shared helpers
def _json_lines(text: str, change: Callable[[Dict[str, Any]], Optional[str]]) -> Optional[str]:
    """Apply `change` (returning the new line, or None to keep it) to every JSON object line of a JSON-lines or
    one-object file; a pretty-printed single object is re-written on one line."""
    stripped = text.strip()
    if stripped.startswith("{") and "\n" in stripped and not stripped.split("\n", 1)[0].rstrip().endswith("}"):
        try:
            whole = json.loads(stripped)
        except ValueError:
            return None
        line = change(whole)
        return None if line is None else line + "\n"
    out = []
    for line in _lines(text):
        try:
            event = json.loads(line) if line.strip().startswith("{") else None
        except ValueError:
            event = None
        new = change(event) if isinstance(event, dict) else None
        out.append(line if new is None else new)
    return _changed(text, "\n".join(out))


def _form_data(text: str, change: Callable[[Dict[str, Any]], Any]) -> Optional[str]:
    """Apply `change` (returning the new JSON text) to every dockerd debug `form data: {...}` body."""
    out = []
    for line in _lines(text):
        match = re.search(r'msg="form data: (.*)"\s*$', line)
        if match:
            try:
                body = json.loads(json.loads('"' + match.group(1) + '"'))
            except ValueError:
                body = None
            if isinstance(body, dict):
                new = change(body)
                if new is not None:  # the new body (a dict, or its JSON text), written back as the Go-quoted string
                    body_text = new if isinstance(new, str) else json.dumps(new, separators=(",", ":"))
                    line = line[:match.start(1)] + json.dumps(body_text)[1:-1] + line[match.end(1):]
        out.append(line)
    return _changed(text, "\n".join(out))


def _pod_specs(event: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The pod specs of an audit event's request object (a pod, or a workload template)."""
    obj = event.get("requestObject")
    if not isinstance(obj, dict):
        return []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    template = spec.get("template", {}).get("spec") if isinstance(spec.get("template"), dict) else None
    if isinstance(template, dict):
        return [template]
    job = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return [job] if isinstance(job, dict) else [spec]


def _containers(spec: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [c for key in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(key) or [] if isinstance(c, dict)]


def _kube(change: Callable[[Dict[str, Any]], bool]) -> Transform:
    def transform(text: str, sourcetype: str) -> Optional[str]:
        if sourcetype != "kube:apiserver-audit":
            return None
        return _json_lines(text, lambda e: json.dumps(e) if change(e) else None)
    return transform


def _docker_bodies(change: Callable[[Dict[str, Any]], Optional[Dict[str, Any]]]) -> Transform:
    """A change of docker create bodies: the debug log's form data and the inspect JSON's HostConfig/Config."""
    def transform(text: str, sourcetype: str) -> Optional[str]:
        if sourcetype == "docker:daemon":
            return _form_data(text, change)
        if sourcetype == "docker:inspect":
            return _json_lines(text, lambda e: None if change(e) is None else json.dumps(change(e)))
        return None
    return transform


# -------------------------------------------------------------------------------------------- docker and kube
def _lower_keys(value: Any, keep: bool = False) -> Any:
    if isinstance(value, dict):
        return {(k if keep else k.lower()): _lower_keys(v, k in ("Labels", "Env", "Annotations", "Config"))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def docker_key_case(text: str, sourcetype: str) -> Optional[str]:
    """Create bodies with lower-case keys ("hostconfig", "privileged", "binds"): dockerd decodes with Go's
    encoding/json, whose keys match case-insensitively, so the container is exactly as privileged."""
    if sourcetype != "docker:daemon":
        return None
    return _form_data(text, lambda b: _lower_keys(b) if "HostConfig" in b else None)


def docker_duplicate_hostconfig(text: str, sourcetype: str) -> Optional[str]:
    """A second, empty "HostConfig" key after the real one: Go decodes it into the same struct (nothing changes),
    Python's json keeps only the last (empty) one."""
    if sourcetype != "docker:daemon":
        return None
    out = []
    for line in _lines(text):
        match = re.search(r'msg="form data: (.*)\}"\s*$', line)
        if match and '\\"HostConfig\\"' in line:
            line = line[:match.end(1)] + ',\\"HostConfig\\":{}' + line[match.end(1):]
        out.append(line)
    return _changed(text, "\n".join(out))


def _kube_duplicate(event: Dict[str, Any]) -> Optional[str]:
    """Every object-valued key inside the request object written twice, the second time empty: the API server's
    decoder (Go's encoding/json rules) merges it into the first; Python's json keeps the empty one."""
    obj = event.get("requestObject")
    if not isinstance(obj, dict) or not _pod_specs(event):
        return None

    def dump(value: Any) -> str:
        if isinstance(value, dict):
            items = []
            for key, item in value.items():
                items.append("{}:{}".format(json.dumps(key), dump(item)))
                if isinstance(item, dict) and item:
                    items.append("{}:{{}}".format(json.dumps(key)))
            return "{" + ",".join(items) + "}"
        if isinstance(value, list):
            return "[" + ",".join(dump(v) for v in value) + "]"
        return json.dumps(value)

    head = dict(event)
    head["requestObject"] = "\x00OBJECT\x00"
    return json.dumps(head).replace(json.dumps("\x00OBJECT\x00"), dump(obj))


def kube_duplicate_keys(text: str, sourcetype: str) -> Optional[str]:
    if sourcetype != "kube:apiserver-audit":
        return None
    return _json_lines(text, _kube_duplicate)


def _capabilities(spelling: Callable[[str], str]) -> Transform:
    def docker(body: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        host = body.get("HostConfig")
        if not isinstance(host, dict) or not host.get("CapAdd"):
            return None
        host["CapAdd"] = [spelling(c) for c in host["CapAdd"]]
        return body

    def kube(event: Dict[str, Any]) -> bool:
        changed = False
        for spec in _pod_specs(event):
            for container in _containers(spec):
                caps = (container.get("securityContext") or {}).get("capabilities") or {}
                if caps.get("add"):
                    caps["add"] = [spelling(c) for c in caps["add"]]
                    changed = True
        return changed

    docker_transform, kube_transform = _docker_bodies(docker), _kube(kube)

    def transform(text: str, sourcetype: str) -> Optional[str]:
        return kube_transform(text, sourcetype) if sourcetype.startswith("kube") else docker_transform(text, sourcetype)
    return transform


caps_prefixed = _capabilities(lambda c: c if c.upper().startswith("CAP_") else "CAP_" + c.upper())
caps_lower = _capabilities(lambda c: c.lower().replace("cap_", ""))


def _trick_path(path: str) -> str:
    """The same host path written another way: `/` as `//`, a `/./` and a `..` step inside, a trailing slash."""
    if path == "/":
        return "//"
    parts = path.rstrip("/").split("/")
    if len(parts) > 2:
        return "/".join(parts[:-1]) + "/./../" + parts[-2] + "/" + parts[-1]
    return path.rstrip("/") + "/./"


def _bind(bind: str) -> str:
    source, sep, rest = bind.partition(":")
    return _trick_path(source) + sep + rest if source.startswith("/") else bind


def path_tricks(text: str, sourcetype: str) -> Optional[str]:
    """Host paths of binds, mounts and hostPath volumes written with `//`, `/./`, `..` and trailing slashes."""
    def docker(body: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        host = body.get("HostConfig")
        if not isinstance(host, dict):
            return None
        changed = False
        if host.get("Binds"):
            host["Binds"] = [_bind(b) for b in host["Binds"]]
            changed = True
        for mount in host.get("Mounts") or []:
            if isinstance(mount, dict) and str(mount.get("Source", "")).startswith("/"):
                mount["Source"] = _trick_path(mount["Source"])
                changed = True
        return body if changed else None

    def kube(event: Dict[str, Any]) -> bool:
        changed = False
        for spec in _pod_specs(event):
            for volume in spec.get("volumes") or []:
                host_path = volume.get("hostPath") if isinstance(volume, dict) else None
                if isinstance(host_path, dict) and str(host_path.get("path", "")).startswith("/"):
                    host_path["path"] = _trick_path(host_path["path"])
                    changed = True
        return changed

    if sourcetype.startswith("kube"):
        return _kube(kube)(text, sourcetype)
    if sourcetype == "docker:inspect":  # docker inspect reports what the daemon resolved: not the attacker's text
        return None
    return _docker_bodies(docker)(text, sourcetype)


def padded_environment(text: str, sourcetype: str) -> Optional[str]:
    """An 8 KB environment variable in every container of a pod spec or a docker inspect record (the debug log
    does not log bodies over 4 KiB, so padded create bodies there are the health detection's business)."""
    def kube(event: Dict[str, Any]) -> bool:
        containers = [c for spec in _pod_specs(event) for c in _containers(spec)]
        for container in containers:
            container["env"] = [{"name": "PAD", "value": PAD}] + list(container.get("env") or [])
        return bool(containers)

    def inspect(record: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        config = record.get("Config")
        if not isinstance(config, dict):
            return None
        config["Env"] = ["PAD=" + PAD] + list(config.get("Env") or [])
        return record

    if sourcetype.startswith("kube"):
        return _kube(kube)(text, sourcetype)
    if sourcetype == "docker:inspect":
        return _docker_bodies(inspect)(text, sourcetype)
    return None


def _image_change(docker_image: Callable[[str], str], kube_change: Callable[[Dict[str, Any], Dict[str, Any]], None]
                  ) -> Transform:
    def docker(body: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        holder = body.get("Config") if isinstance(body.get("Config"), dict) else body
        if not isinstance(holder.get("Image"), str):
            return None
        holder["Image"] = docker_image(holder["Image"])
        return body

    def kube(event: Dict[str, Any]) -> bool:
        changed = False
        for spec in _pod_specs(event):
            for container in _containers(spec):
                if "image" in container:
                    kube_change(event, container)
                    changed = True
        return changed

    def transform(text: str, sourcetype: str) -> Optional[str]:
        return _kube(kube)(text, sourcetype) if sourcetype.startswith("kube") else \
            _docker_bodies(docker)(text, sourcetype)
    return transform


def _kube_retag(event: Dict[str, Any], container: Dict[str, Any]) -> None:
    namespace, account, image = KUBE_AGENT
    container["image"] = image
    obj = event["requestObject"]
    obj.setdefault("metadata", {})["namespace"] = namespace
    if isinstance(event.get("objectRef"), dict):
        event["objectRef"]["namespace"] = namespace
    for spec in _pod_specs(event):
        spec["serviceAccountName"] = account


def _kube_lookalike(event: Dict[str, Any], container: Dict[str, Any]) -> None:
    container["image"] = "docker.io/calico/node-exporter-evil:v1"
    _kube_retag_identity(event)


def _kube_retag_identity(event: Dict[str, Any]) -> None:
    namespace, account, _ = KUBE_AGENT
    event["requestObject"].setdefault("metadata", {})["namespace"] = namespace
    if isinstance(event.get("objectRef"), dict):
        event["objectRef"]["namespace"] = namespace
    for spec in _pod_specs(event):
        spec["serviceAccountName"] = account


retagged_image = _image_change(lambda _: DOCKER_ALLOWLISTED, _kube_retag)
allowlisted_lookalike = _image_change(lambda _: "docker.io/amazon/amazon-ecs-agent-evil:latest", _kube_lookalike)


def name_reuse(text: str, sourcetype: str) -> Optional[str]:
    """Every container created under one name, `job` (docker deletes and re-creates it)."""
    if sourcetype == "docker:daemon":
        return _changed(text, re.sub(r"(/containers/create\?name=)[^\s\"&]+", r"\1job", text))
    if sourcetype == "docker:inspect":
        return _json_lines(text, lambda e: json.dumps(dict(e, Name="/job")) if "Name" in e else None)
    return None


# --------------------------------------------------------------------------------------- benign (silent) ones
def _reorder(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


def reordered_keys(text: str, sourcetype: str) -> Optional[str]:
    """JSON objects with their keys in reverse order (JSON objects are unordered)."""
    if sourcetype.startswith("kube") or sourcetype == "docker:inspect":
        return _json_lines(text, lambda e: json.dumps(_reorder(e)))
    if sourcetype == "docker:daemon":
        return _form_data(text, _reorder)
    return None


def extra_whitespace(text: str, sourcetype: str) -> Optional[str]:
    """JSON with spaces after every separator; ESXi shell commands with runs of blanks."""
    if sourcetype.startswith("kube") or sourcetype == "docker:inspect":
        return _json_lines(text, lambda e: json.dumps(e, separators=(" ,  ", " :  ")))
    return esxi_extra_whitespace(text, sourcetype)


def renamed_benign_containers(text: str, sourcetype: str) -> Optional[str]:
    """Benign containers and pods renamed (names carry no meaning)."""
    if sourcetype == "docker:daemon":
        return _changed(text, re.sub(r"(/containers/create\?name=)([^\s\"&]+)", r"\1renamed-\2", text))
    if sourcetype == "docker:inspect":
        return _json_lines(text, lambda e: json.dumps(dict(e, Name="/renamed" + str(e.get("Name", "")).lstrip("/")))
                           if "Name" in e else None)
    if sourcetype.startswith("kube"):
        def rename(event: Dict[str, Any]) -> bool:
            obj = event.get("requestObject")
            if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict) or "name" not in obj["metadata"]:
                return False
            obj["metadata"]["name"] = "renamed-" + str(obj["metadata"]["name"])
            return True
        return _kube(rename)(text, sourcetype)
    return None


def windows_reordered_data(text: str, sourcetype: str) -> Optional[str]:
    """The <Data> elements of each Windows XML event in reverse order."""
    if not sourcetype.startswith("XmlWinEventLog"):
        return None
    return _changed(text, re.sub(r"(<EventData>)(.*?)(</EventData>)", lambda m: m.group(1) + "".join(
        reversed(re.findall(r"<Data [^>]*?(?:/>|>[^<]*</Data>)", m.group(2)))) + m.group(3), text))


EVASIONS: Dict[str, Transform] = {
    "runtime_named": runtime_named,
    "shell_legal_paths": shell_legal_paths,
    "split_argv": split_argv,
    "padded_environment": padded_environment,
    "docker_key_case": docker_key_case,
    "docker_duplicate_hostconfig": docker_duplicate_hostconfig,
    "kube_duplicate_keys": kube_duplicate_keys,
    "caps_prefixed": caps_prefixed,
    "caps_lower": caps_lower,
    "path_tricks": path_tricks,
    "allowlisted_lookalike": allowlisted_lookalike,
    "retagged_image": retagged_image,
    "name_reuse": name_reuse,
    "windows_path_tricks": windows_path_tricks,
    "windows_padded_command_line": windows_padded_command_line,
    "esxi_padded_shell": esxi_padded_shell,
    "esxi_extra_whitespace": esxi_extra_whitespace,
}
BENIGN: Dict[str, Transform] = {
    "reordered_keys": reordered_keys,
    "extra_whitespace": extra_whitespace,
    "renamed_benign_containers": renamed_benign_containers,
    "windows_reordered_data": windows_reordered_data,
}
SEVERITIES: Tuple[str, ...] = ("informational", "low", "medium", "high", "critical")
