"""Kubernetes API-server audit events: unwrap (plain, EKS, AKS, GKE), decide whether a write happened, read the spec.

Decisions come from the event text itself: the verb, the resource, the authorization decision, the response code
and the spec, never from fields Splunk extracted (its automatic JSON extraction stops after 5,000 bytes).
"""
import json
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from . import gojson
from .kubepatch import apply_patch, json_patch_object, webhook_patches
from .specrules import Container, Workload, command_word, normalise_capability

WRITE_VERBS = ("create", "update", "patch")

# objectRef.resource -> where the pod spec lives inside the object.
SPEC_PATHS: Dict[str, Tuple[str, ...]] = {
    "pods": ("spec",),
    "deployments": ("spec", "template", "spec"),
    "daemonsets": ("spec", "template", "spec"),
    "statefulsets": ("spec", "template", "spec"),
    "replicasets": ("spec", "template", "spec"),
    "replicationcontrollers": ("spec", "template", "spec"),
    "jobs": ("spec", "template", "spec"),
    "cronjobs": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# Objects that give host access without a pod spec: a PersistentVolume backed by a host directory, which any pod
# may then claim through a PersistentVolumeClaim.
VOLUME_RESOURCES = ("persistentvolumes",)
KINDS = {"persistentvolumes": "PersistentVolume", "pods": "Pod", "deployments": "Deployment", "daemonsets": "DaemonSet", "statefulsets": "StatefulSet",
         "replicasets": "ReplicaSet", "replicationcontrollers": "ReplicationController", "jobs": "Job",
         "cronjobs": "CronJob"}
# Subresources that carry a pod spec; others (status, exec, log, binding, eviction...) never do.
SPEC_SUBRESOURCES = ("", "ephemeralcontainers")


class AuditEvent:
    """One audit event in the audit.k8s.io shape, whatever the wrapper."""

    def __init__(self) -> None:
        self.verb = ""
        self.resource = ""
        self.subresource = ""
        self.namespace = ""
        self.name = ""
        self.stage = ""
        self.code: Optional[int] = None      # None: the event has no response status
        self.decision = ""                   # allow | forbid | "" (not recorded)
        self.username = ""
        self.audit_id = ""
        self.level = ""
        self.truncated = False
        self.request: Any = None
        self.response: Any = None
        self.wrapper = "audit"               # audit | aks | gke
        self.cluster = ""
        self.request_uri = ""
        self.annotations: Dict[str, Any] = {}


class NotAuditEvent(ValueError):
    """The text is JSON but no Kubernetes audit event."""


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _plain(event: Mapping[str, Any], wrapper: str) -> AuditEvent:
    result = AuditEvent()
    result.wrapper = wrapper
    result.verb = _text(event.get("verb")).lower()
    ref = _dict(event.get("objectRef"))
    result.resource = _text(ref.get("resource")).lower()
    result.subresource = _text(ref.get("subresource")).lower()
    result.namespace = _text(ref.get("namespace"))
    result.name = _text(ref.get("name"))
    result.stage = _text(event.get("stage"))
    status = event.get("responseStatus")
    if isinstance(status, dict) and isinstance(status.get("code"), int):
        result.code = int(status["code"])
    annotations = _dict(event.get("annotations"))
    result.decision = _text(annotations.get("authorization.k8s.io/decision")).lower()
    result.truncated = _text(annotations.get("audit.k8s.io/truncated")).lower() == "true"
    result.username = _text(_dict(event.get("user")).get("username"))
    result.audit_id = _text(event.get("auditID"))
    result.level = _text(event.get("level"))
    result.request = event.get("requestObject")
    result.response = event.get("responseObject")
    result.request_uri = _text(event.get("requestURI"))
    result.annotations = annotations
    return result


def _gke(event: Mapping[str, Any]) -> AuditEvent:
    """GKE Cloud Audit Logs: `protoPayload.methodName` io.k8s.<group>.<version>.<resource>[.<sub>].<verb>."""
    payload = _dict(event.get("protoPayload"))
    result = AuditEvent()
    result.wrapper = "gke"
    method = _text(payload.get("methodName"))
    parts = method.split(".")
    if len(parts) < 5 or parts[0] != "io" or parts[1] != "k8s":
        raise NotAuditEvent("GKE method {!r} is not a Kubernetes API call".format(method))
    result.verb = parts[-1].lower()
    result.resource = parts[4].lower()
    result.subresource = ".".join(parts[5:-1]).lower()
    resource_name = _text(payload.get("resourceName")).split("/")
    if "namespaces" in resource_name:
        position = resource_name.index("namespaces")
        result.namespace = resource_name[position + 1] if position + 1 < len(resource_name) else ""
        rest = resource_name[position + 2:]
        result.name = rest[1] if len(rest) > 1 else ""
    grants = [g for g in _list(payload.get("authorizationInfo")) if isinstance(g, dict)]
    if grants:
        result.decision = "allow" if all(g.get("granted") is True for g in grants) else "forbid"
    status = _dict(payload.get("status"))
    code = status.get("code", 0)
    # google.rpc status: 0 (or absent) is OK; anything else failed (read as a refusal).
    result.code = 200 if code in (0, None) else 403
    result.username = _text(_dict(payload.get("authenticationInfo")).get("principalEmail"))
    result.request = payload.get("request")
    result.response = payload.get("response")
    result.stage = "ResponseComplete"
    result.cluster = _text(_dict(_dict(event.get("resource")).get("labels")).get("cluster_name"))
    if isinstance(result.request, dict) and not result.namespace:
        result.namespace = _text(_dict(result.request.get("metadata")).get("namespace"))
    return result


def parse(text: str) -> AuditEvent:
    """Parse one event's text. Raises ValueError (with the reason) on text that is not a usable audit event."""
    try:
        event = json.loads(text, object_pairs_hook=gojson.merged_object)
    except (ValueError, RecursionError) as err:  # RecursionError: JSON nested too deeply
        raise ValueError("not valid JSON ({}): cut by a pipeline or TRUNCATE?".format(err)) from None
    if not isinstance(event, dict):
        raise NotAuditEvent("JSON is not an object")
    if "protoPayload" in event:
        return _gke(event)
    properties = event.get("properties")
    if isinstance(properties, dict) and "log" in properties:
        inner = properties["log"]
        if isinstance(inner, str):
            try:
                inner = json.loads(inner, object_pairs_hook=gojson.merged_object)
            except (ValueError, RecursionError) as err:  # RecursionError: nested too deeply
                raise ValueError("AKS properties.log is not valid JSON ({})".format(err)) from None
        if not isinstance(inner, dict):
            raise NotAuditEvent("AKS properties.log is not an object")
        return _plain(inner, "aks")
    if "verb" in event and "objectRef" in event:
        return _plain(event, "audit")
    raise NotAuditEvent("no verb and objectRef: not a Kubernetes audit event")


def is_spec_write(event: AuditEvent) -> bool:
    """A create/update/patch of a pod or workload template (subresource none or ephemeralcontainers), or of a
    PersistentVolume."""
    return (event.verb in WRITE_VERBS and (event.resource in SPEC_PATHS or event.resource in VOLUME_RESOURCES)
            and event.subresource in SPEC_SUBRESOURCES)


def dry_run(event: AuditEvent) -> bool:
    """A write sent with ?dryRun=All: admitted and validated, never stored, so nothing runs."""
    query = urlsplit(event.request_uri).query if event.request_uri else ""
    return "All" in parse_qs(query).get("dryRun", [])


def succeeded(event: AuditEvent) -> bool:
    """Allowed and successful at the final stage; one request is then counted once."""
    if event.stage and event.stage not in ("ResponseComplete",):
        return False
    if event.decision and event.decision != "allow":
        return False
    return event.code is not None and 200 <= event.code < 300


def _dig(obj: Any, path: Tuple[str, ...]) -> Optional[Dict[str, Any]]:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, dict) else None


def _has_spec(obj: Any, event: AuditEvent) -> bool:
    if event.resource in VOLUME_RESOURCES:
        return isinstance(obj, dict) and isinstance(obj.get("spec"), dict)
    return _dig(obj, SPEC_PATHS[event.resource]) is not None or (
        isinstance(obj, dict) and isinstance(obj.get("ephemeralContainers"), list))


def spec_object(event: AuditEvent) -> Any:
    """The object that holds the resulting spec, as admitted: the responseObject when it carries the spec (after
    every mutating webhook); else the request with the webhooks' logged patches applied (a patch request: what it
    sets; strategic-merge or merge patch: the document; JSON patch: the values of its add/replace ops)."""
    if isinstance(event.response, dict) and _has_spec(event.response, event):
        return event.response
    obj: Any = None
    if isinstance(event.request, dict):
        obj = event.request
    elif event.verb == "patch" and isinstance(event.request, list):
        obj = json_patch_object(event.request)
    elif isinstance(event.response, dict):
        obj = event.response
    patches = webhook_patches(event.annotations)
    if patches and isinstance(obj, dict):
        obj = apply_patch(obj, patches)
    return obj


def _security(container: Container, context: Mapping[str, Any]) -> None:
    if context.get("privileged") is True:
        container.privileged = True
    capabilities = _dict(context.get("capabilities"))
    container.capabilities = [normalise_capability(c) for c in _list(capabilities.get("add")) if isinstance(c, str)]
    escalation = context.get("allowPrivilegeEscalation")
    if isinstance(escalation, bool):
        container.allow_privilege_escalation = escalation
    if _text(_dict(context.get("seccompProfile")).get("type")).lower() == "unconfined":
        container.seccomp_unconfined = True
    if _text(_dict(context.get("appArmorProfile")).get("type")).lower() == "unconfined":
        container.apparmor_unconfined = True
    if _text(context.get("procMount")).lower() == "unmasked":
        container.proc_mount_unmasked = True
    if _dict(context.get("windowsOptions")).get("hostProcess") is True:
        container.host_process = True


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_HOOKS = ("postStart", "preStop")


def _runs(container: Container, item: Mapping[str, Any]) -> None:
    """What the spec runs in the container: its command (or an args word), and every exec probe and hook (the
    kubelet runs those inside the container too)."""
    word, where = command_word(_list(item.get("command")), _list(item.get("args")))
    if word:
        container.runs.append((word, where))
    handlers = [(key, _dict(item.get(key))) for key in _PROBES]
    handlers += [(key, _dict(_dict(item.get("lifecycle")).get(key))) for key in _HOOKS]
    for key, handler in handlers:
        word, _ = command_word(_list(_dict(handler.get("exec")).get("command")), [], cleared=True)
        if word:
            container.runs.append((word, key))


def _owner(metadata: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    """The controlling owner (kind, name); a ReplicaSet made by a Deployment is attributed to the Deployment."""
    owners = [o for o in _list(metadata.get("ownerReferences")) if isinstance(o, dict)]
    owner = next((o for o in owners if o.get("controller") is True), owners[0] if owners else None)
    if owner is None:
        return None
    kind, name = _text(owner.get("kind")), _text(owner.get("name"))
    template_hash = _text(_dict(metadata.get("labels")).get("pod-template-hash"))
    if kind == "ReplicaSet" and template_hash and name.endswith("-" + template_hash):
        return "Deployment", name[:-len(template_hash) - 1]
    return kind, name


def _volume(event: AuditEvent, obj: Dict[str, Any]) -> Optional[Workload]:
    """A PersistentVolume: host access when it is backed by a host directory (hostPath or local)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    result = Workload("kubernetes")
    result.kind = "PersistentVolume"
    result.name = event.name or _text(_dict(obj.get("metadata")).get("name"))
    result.service_account = "-"
    for key in ("hostPath", "local"):
        path = _dict(spec.get(key)).get("path")
        if isinstance(path, str):
            result.host_paths.append((path, "persistent volume {} ({})".format(result.name or "?", key), False))
    return result


def workload(event: AuditEvent) -> Optional[Workload]:
    """The workload the event writes, or None when the event carries no spec (Metadata level, truncated)."""
    obj = spec_object(event)
    if obj is None:
        return None
    if event.resource in VOLUME_RESOURCES:
        return _volume(event, obj)
    spec = _dig(obj, SPEC_PATHS[event.resource])
    if spec is None and event.subresource == "ephemeralcontainers" and isinstance(obj.get("ephemeralContainers"),
                                                                                  list):
        # Kubernetes 1.16-1.21: the subresource took an EphemeralContainers object (or a JSON patch of
        # /ephemeralContainers/-) with the list at the top level
        spec = {"ephemeralContainers": obj["ephemeralContainers"]}
    if spec is None:
        return None
    metadata = _dict(obj.get("metadata"))
    result = Workload("kubernetes")
    result.namespace = event.namespace or _text(metadata.get("namespace"))
    name = event.name or _text(metadata.get("name")) or _text(metadata.get("generateName"))
    result.actor = event.username
    result.pod_write = event.resource == "pods"
    owner = _owner(metadata) if event.resource == "pods" else None
    if owner is not None and owner[0] == "Node":
        # a mirror pod of a static pod (kubelet manifest dir): owned by its Node, named <pod>-<node>; each one is
        # its own workload, so one alert suppression cannot hide a planted static pod behind the real ones
        result.kind, result.name = "StaticPod", name
    elif owner is not None:
        result.kind, result.name = owner
    else:
        result.kind, result.name = KINDS[event.resource], name
    result.service_account = _text(spec.get("serviceAccountName")) or _text(spec.get("serviceAccount")) or "default"
    result.host_pid = spec.get("hostPID") is True
    result.host_ipc = spec.get("hostIPC") is True
    result.host_network = spec.get("hostNetwork") is True
    pod_context = _dict(spec.get("securityContext"))
    pod_defaults = Container("", "", "pod")
    _security(pod_defaults, pod_context)
    result.seccomp_unconfined = pod_defaults.seccomp_unconfined
    result.apparmor_unconfined = pod_defaults.apparmor_unconfined
    annotations = _dict(metadata.get("annotations"))
    template_annotations = _dict(_dict(_dig(obj, SPEC_PATHS[event.resource][:-1]) or {}).get("metadata")).get(
        "annotations") if event.resource != "pods" else None
    annotations = dict(annotations, **_dict(template_annotations))
    if _text(annotations.get("seccomp.security.alpha.kubernetes.io/pod")).lower() == "unconfined":
        result.seccomp_unconfined = True
    for key, role in (("initContainers", "initContainer"), ("containers", "container"),
                      ("ephemeralContainers", "ephemeralContainer")):
        for item in _list(spec.get(key)):
            if not isinstance(item, dict):
                continue
            container = Container(_text(item.get("name")), _text(item.get("image")), role)
            _security(container, _dict(item.get("securityContext")))
            _runs(container, item)
            if pod_defaults.host_process:
                container.host_process = True
            # concatenated, never str.format: a container name may hold "{" or "}"
            if _text(annotations.get("container.apparmor.security.beta.kubernetes.io/" + container.name)).lower() \
                    == "unconfined":
                container.apparmor_unconfined = True
            if _text(annotations.get("container.seccomp.security.alpha.kubernetes.io/" + container.name)).lower() \
                    == "unconfined":
                container.seccomp_unconfined = True
            result.containers.append(container)
    # A volume is read-only when every container that mounts it mounts it readOnly (and at least one does); the
    # allowlist also reads each container's own mounts (specrules.Workload.mounted_by).
    mounters: Dict[str, Dict[str, bool]] = {}      # volume -> container -> read-only in all its mounts
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for item in _list(spec.get(key)):
            for mount in _list(_dict(item).get("volumeMounts")):
                if isinstance(mount, dict):
                    by_container = mounters.setdefault(_text(mount.get("name")), {})
                    container_name = _text(_dict(item).get("name"))
                    by_container[container_name] = by_container.get(container_name, True) and \
                        mount.get("readOnly") is True
    for volume in _list(spec.get("volumes")):
        if not isinstance(volume, dict):
            continue
        host_path = volume.get("hostPath")
        if isinstance(host_path, dict) and isinstance(host_path.get("path"), str):
            name = _text(volume.get("name"))
            mounted = mounters.get(name, {})
            result.host_paths.append((host_path["path"], "volume " + name, bool(mounted) and all(mounted.values())))
            result.mounted_by["volume " + name] = tuple(mounted.items())
    return result
