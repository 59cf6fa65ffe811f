"""Spec inspection (AN0612): Kubernetes audit writes, dockerd create bodies and docker inspect -> one row per event.

Records in, rows out. Each output row is the input record plus `escape_` fields (finding types, severity, summary,
evidence, workload). A record with no isolation-breaking setting yields nothing. State kept across chunks is
only the pairing of a dockerd "form data" line with its "Calling POST" line (escape_engine.dockerpair).
"""
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from . import docker, kube
from .allowlist import AllowRule, judge, need_token
from .containers import (
    RUNTIME_EVENT_SOURCETYPES,
    CreateJoin,
    host_access,
    inspect_facts,
    parse_runtime_event,
)
from .dockerpair import DaemonPairing, Match, Pending
from .dockervolumes import MAX_HELD, VolumeDefinition, VolumeDefinitions
from .evidence import CD_FIELD, address, reference, row_fields
from .ground import Record, Row
from .incident import incident_key, pod_identity
from .registry import Registry
from .scalars import finite_float, first_text
from .specrules import Finding, Workload, findings, max_severity, parse_allowed_paths

SUPPRESSED_MODES = ("exclude", "include", "only")
MODES = ("spec", "health", "registry")
FINDING_TYPES = ("privileged", "host_process", "capability", "privilege_escalation", "seccomp_unconfined",
                 "apparmor_unconfined", "selinux_unconfined", "proc_unmasked", "host_pid", "host_ipc", "host_network",
                 "host_uts", "host_userns", "host_cgroupns", "host_path", "device", "duplicate_key")
HEALTH_FINDINGS = ("spec_missing", "spec_truncated", "event_unparseable", "create_body_missing")


class Inspector:
    """One search's inspection state. `feed()` once per chunk, `flush()` after the last one."""

    def __init__(self, *, allowed_host_paths: str, allowlist: Sequence[AllowRule] = (), suppressed: str = "exclude",
                 finding: str = "", mode: str = "spec", field: str = "_raw") -> None:
        if suppressed not in SUPPRESSED_MODES:
            raise ValueError("suppressed={} is not one of {}".format(suppressed, ", ".join(SUPPRESSED_MODES)))
        if mode not in MODES:
            raise ValueError("mode={} is not one of {}".format(mode, ", ".join(MODES)))
        wanted = [f.strip() for f in finding.split(",") if f.strip()]
        unknown = [f for f in wanted if f not in FINDING_TYPES]
        if unknown:
            raise ValueError("finding={} is unknown; use one or more of {}".format(
                ",".join(unknown), ", ".join(FINDING_TYPES)))
        self.allowed = parse_allowed_paths(allowed_host_paths)
        self.allowlist = list(allowlist)
        self.suppressed = suppressed
        self.wanted = wanted
        self.mode = mode
        self.field = field
        self.counts: Dict[str, int] = {}
        self._pairing = DaemonPairing(lambda: self._count("event_unparseable"))
        self._join = CreateJoin()           # container create events, for a docker create call's container id
        self.registry = Registry()          # mode=registry: what the runtimes said about each container
        self._volumes = VolumeDefinitions()  # docker volume creates, for the creates that mount them by name
        self._held: List[Tuple[Pending, Optional[Pending], Workload]] = []     # creates waiting for their volumes

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def report(self) -> List[str]:
        """Sentences for the search's inspector about events that could not be judged."""
        notes = {
            "event_unparseable": "{} event(s) were not valid JSON (cut by a pipeline or TRUNCATE?) and were skipped",
            "spec_missing": "{} pod or workload write(s) carried no request body (audit level Metadata): spec unknown",
            "spec_truncated": "{} pod or workload write(s) were marked audit.k8s.io/truncated: spec unknown",
            "create_body_missing": "{} docker create call(s) had no form data line (body over 4 KiB or no --debug)",
            "not_inspectable": "{} event(s) were neither a Kubernetes audit event nor docker data and were skipped",
            "docker_denied": "{} docker call(s) refused by an authorization plugin were not rated (nothing ran)",
            "dry_run": "{} Kubernetes write(s) with dryRun=All were not rated (nothing was stored)",
            "registry_dropped": "{} create call(s) past the registry's per-search bound were not joined",
            "volumes_dropped": "{} docker volume create(s) past the per-search bound were not joined to their mounts",
        }
        if self.registry.dropped:
            self.counts["registry_dropped"] = self.registry.dropped
        if self._volumes.dropped:
            self.counts["volumes_dropped"] = self._volumes.dropped
        return [text.format(self.counts[key]) for key, text in notes.items() if self.counts.get(key)]

    # -- rows ----------------------------------------------------------------------------------------------------
    def _row(self, record: Record, workload: Workload, found: List[Finding], evidence: List[str],
             extra: Dict[str, str], when: float = 0.0, cid: str = "") -> Optional[Row]:
        if self.mode == "registry":
            self._note_create(record, workload, found, extra, when)
            return None
        verdict = judge(workload, found, self.allowlist) if found else None
        if self.wanted:
            found = [f for f in found if f.finding in self.wanted]
        if not found:
            return None
        origin = verdict.origin if verdict is not None and not verdict.exceeded else None
        if (origin is not None and self.suppressed == "exclude") or (origin is None and self.suppressed == "only"):
            return None
        row: Row = dict(record)
        severity = "informational" if origin is not None else max_severity(f.severity for f in found)
        label = _workload_label(workload, first_text(record.get("host")))
        kinds = list(dict.fromkeys(f.finding for f in found))
        details = ["{} ({})".format(f.detail, f.severity) for f in found]
        images = list(dict.fromkeys(c.image for c in workload.containers if c.image))
        row["escape_finding"] = _one_or_many(kinds)
        row["escape_severity"] = severity
        row["escape_detail"] = _one_or_many(details)
        needs = [t for t in dict.fromkeys(need_token(f) for f in found) if t]
        if needs:
            row["escape_needs"] = _one_or_many(needs)
        row["escape_workload"] = label
        row["escape_platform"] = workload.platform
        row["escape_suppressed"] = "1" if origin is not None else "0"
        prefix = ""
        if origin is not None:
            row["escape_allowlist"] = origin
            prefix = "Allowlisted ({}) ".format(origin)
        elif verdict is not None:
            row["escape_allowlist"] = verdict.origin
            beyond = [f.detail for f in verdict.exceeded]
            row["escape_allowlist_exceeded"] = _one_or_many(beyond)
            prefix = "Beyond its allowlist entry ({}: {}) ".format(verdict.origin, "; ".join(beyond))
        if images:
            row["escape_image"] = _one_or_many(images)
        if workload.namespace:
            row["escape_namespace"] = workload.namespace
        if workload.platform == "kubernetes":
            row["escape_service_account"] = workload.service_account
        found_at = row_fields(evidence)
        if found_at[CD_FIELD]:
            row.update((name, _one_or_many(values)) for name, values in found_at.items())
        row.update(extra)
        actor = extra.get("escape_actor", "")
        summary = "{}{} {}: {}.{}".format(prefix, extra.get("escape_action", "write of"), label, "; ".join(details),
                                          " Actor: {}.".format(actor) if actor else "")
        row["escape_summary"] = summary[0].upper() + summary[1:]
        if cid:
            row["escape_container_id"] = cid
        row["escape_incident"] = _incident(workload, first_text(record.get("host")), cid, label)
        return row

    def _note_create(self, record: Record, workload: Workload, found: List[Finding], extra: Dict[str, str],
                     when: float) -> None:
        """mode=registry: what a create call gave its container, for the registry (never a row of its own)."""
        access = host_access([(f.finding, f.subject) for f in found])
        actor = extra.get("escape_actor", "")
        when = when or finite_float(first_text(record.get("_time"))) or 0.0
        if workload.platform == "kubernetes":
            if workload.pod_write and extra.get("escape_launch") == "1":
                self.registry.add_pod_create(workload.namespace, workload.name, when, actor, access)
        elif extra.get("escape_launch") == "1" and extra.get("escape_container"):
            self.registry.add_create(first_text(record.get("host")), extra["escape_container"], when, actor, access)

    def _health_row(self, record: Record, finding: str, detail: str, extra: Dict[str, str]) -> Row:
        row: Row = dict(record)
        row["escape_finding"] = finding
        row["escape_severity"] = "low"
        row["escape_summary"] = detail
        row.update((name, values[0]) for name, values in row_fields([reference(record)]).items() if values)
        row.update(extra)
        if extra.get("escape_workload"):
            row["escape_incident"] = incident_key(first_text(record.get("host")), workload=extra["escape_workload"])
        return row

    # -- Kubernetes ----------------------------------------------------------------------------------------------
    def _kube(self, record: Record, text: str) -> Iterator[Row]:
        try:
            event = kube.parse(text)
        except kube.NotAuditEvent:
            # docker events carry no spec (no Privileged, Binds or modes): lifecycle only, nothing to inspect.
            if not docker.is_event(text):
                self._count("not_inspectable")
            return
        except ValueError as err:
            self._count("event_unparseable")
            if self.mode == "health":
                yield self._health_row(record, "event_unparseable", "Unreadable Kubernetes audit event: {}".format(err),
                                       {"escape_platform": "kubernetes"})
            return
        if not (kube.is_spec_write(event) and kube.succeeded(event)):
            return
        if kube.dry_run(event):     # validated and admitted, never stored: nothing runs (counted, not rated)
            self._count("dry_run")
            return
        extra = {"escape_actor": event.username, "escape_action": "{} of".format(event.verb),
                 "escape_verb": event.verb, "escape_resource": event.resource + (
                     "/" + event.subresource if event.subresource else "")}
        if event.cluster:
            extra["escape_cluster"] = event.cluster
        if event.audit_id:
            extra["escape_audit_id"] = event.audit_id
        workload = kube.workload(event)
        if workload is None and not event.truncated and (event.request is not None or event.response is not None):
            return      # a body that sets no pod spec (a label or replica patch): nothing to inspect, nothing missing
        if workload is None:
            what = "spec_truncated" if event.truncated else "spec_missing"
            self._count(what)
            if self.mode == "health":
                target = "{} {}/{}".format(event.resource, event.namespace, event.name or "?")
                reason = ("marked audit.k8s.io/truncated" if event.truncated
                          else "logged without a request body (audit level {})".format(event.level or "Metadata"))
                extra.pop("escape_action")
                label = "{}/{}/{}".format(kube.KINDS[event.resource], event.namespace or "-", event.name or "-")
                yield self._health_row(record, what, "The {} of {} by {} was {}: its spec cannot be inspected.".format(
                    event.verb, target, event.username or "?", reason),
                    dict(extra, escape_platform="kubernetes", escape_workload=label))
            return
        if self.mode == "health":
            return
        launch = event.resource == "pods" and event.verb == "create" and not event.subresource
        extra["escape_launch"] = "1" if launch else "0"
        if launch:  # the request's audit ID, else the event itself (never a name: pods may reuse one over time)
            extra["escape_launch_id"] = event.audit_id or address(reference(record))
        row = self._row(record, workload, findings(workload, self.allowed), [reference(record)], extra)
        if row is not None:
            yield row

    # -- docker --------------------------------------------------------------------------------------------------
    def _inspect_json(self, record: Record, text: str) -> Iterator[Row]:
        try:
            items = docker.inspect_workloads(text)
        except ValueError:
            self._count("event_unparseable")
            return
        if self.mode == "health":
            return
        host = first_text(record.get("host"))
        for workload, item in items:
            if self.mode == "registry":
                facts = inspect_facts(item, host)
                if facts is not None:
                    facts.host_access = host_access([(f.finding, f.subject)
                                                     for f in findings(workload, self.allowed)])
                    self.registry.add(facts)
                continue
            state = item.get("State") if isinstance(item.get("State"), dict) else {}
            extra = {"escape_action": "docker inspect of", "escape_launch": "1",
                     # the container's ID: containers may share a name over time (and --rm ones reuse it)
                     "escape_launch_id": _container_launch(host, workload.container_id, record),
                     "escape_container": workload.name}
            status = state.get("Status") if isinstance(state, dict) else None
            if isinstance(status, str):
                extra["escape_state"] = status
            row = self._row(record, workload, findings(workload, self.allowed), [reference(record)], extra,
                            cid=workload.container_id)
            if row is not None:
                yield row

    def _docker_match(self, match: Match) -> Iterator[Row]:
        if match.form is None:
            if match.call is not None:
                yield from self._unpaired_call(match.call)
            return
        if match.denied:     # refused by an authorization plugin: nothing ran (like a Kubernetes 403)
            self._count("docker_denied")
            return
        yield from self._docker_pair(match.form, match.call)

    def _docker_pair(self, form: Pending, call: Optional[Pending]) -> Iterator[Row]:
        assert form.body is not None
        name = call.name if call is not None else ""
        if form.kind == "exec":
            workload = docker.exec_workload(form.body, name)
            action = "docker exec into"
        elif form.kind == "volume":
            workload = docker.volume_workload(form.body)
            name = workload.name
            action = "docker volume create of"
        else:
            workload = docker.create_workload(form.body, name)
            action = "docker create of"
        if self.mode == "health":
            return
        host = first_text(form.record.get("host"))
        if form.kind == "volume":
            self._volumes.add(host, name, VolumeDefinition(form.time, list(workload.host_paths), reference(form.record)))
        elif form.kind == "create" and workload.volumes:
            # its named volumes may be defined by volume creates logged before it (seen later: newest first)
            self._held.append((form, call, workload))
            if len(self._held) > MAX_HELD:
                yield from self._container_row(*self._held.pop(0))
            return
        yield from self._container_row(form, call, workload, action)

    def _container_row(self, form: Pending, call: Optional[Pending], workload: Workload,
                       action: str = "docker create of") -> Iterator[Row]:
        name = call.name if call is not None else workload.name
        host = first_text(form.record.get("host"))
        extra = {"escape_action": action, "escape_container": name,
                 "escape_launch": "1" if form.kind == "create" else "0"}
        evidence = [reference(form.record)]
        if call is not None:
            evidence.append(reference(call.record))
        when = call.time if call is not None else form.time
        if form.kind == "create" and workload.volumes:
            evidence.extend(self._volumes.resolve(host, workload, when))
        created = self._join.find(host, name, when) if form.kind == "create" and name else None
        if form.kind == "create":
            # one create call: the container its create event names, else the call's own form data event (twenty
            # creates of containers all named "job" are twenty launches)
            extra["escape_launch_id"] = _container_launch(
                host, created.container_id if created is not None else "", form.record)
        row = self._row(form.record, workload, findings(workload, self.allowed), evidence, extra, when,
                        created.container_id if created is not None else "")
        if row is not None:
            yield row

    def _unpaired_call(self, call: Pending) -> Iterator[Row]:
        if call.kind != "create":
            return
        self._count("create_body_missing")
        if self.mode == "health":
            yield self._health_row(call.record, "create_body_missing", (
                "dockerd logged the create of container {} without its form data (body over 4 KiB, or not at debug "
                "level): its settings cannot be inspected.").format(call.name or "(unnamed)"),
                {"escape_platform": "docker", "escape_container": call.name,
                 "escape_workload": "docker:{}/{}".format(first_text(call.record.get("host")) or "-",
                                                          call.name or "(unnamed)")})

    # -- entry points --------------------------------------------------------------------------------------------
    def feed(self, records: Iterable[Record]) -> Iterator[Row]:
        for record in records:
            text = first_text(record.get(self.field)).strip()
            if not text:
                continue
            sourcetype = first_text(record.get("sourcetype"))
            if sourcetype in RUNTIME_EVENT_SOURCETYPES:     # the sourcetype says who wrote it, never the text
                self._runtime_event(record, text, sourcetype)
                continue
            if text.startswith(("{", "[")):
                if _looks_like_inspect(text):
                    yield from self._inspect_json(record, text)
                else:
                    yield from self._kube(record, text)
            elif "msg=" in text:
                for match in self._pairing.add(record, text):
                    yield from self._docker_match(match)
            else:
                self._count("not_inspectable")

    def _runtime_event(self, record: Record, text: str, sourcetype: str) -> None:
        """A docker or podman container event: held for the create join (and the registry). Events arrive newest
        first, so a container's create event is at hand when the create call that made it arrives."""
        event = parse_runtime_event(text, first_text(record.get("host")), sourcetype)
        if event is None:
            return
        action, facts = event
        if self.mode == "registry":
            self.registry.add(facts)
        elif action == "create":
            self._join.add(facts)

    def flush(self) -> Iterator[Row]:
        """Rows held back for pairing: unpaired bodies (no container name) and, in health mode, bodiless creates;
        in registry mode, one row per container."""
        for match in self._pairing.flush():
            yield from self._docker_match(match)
        held, self._held = self._held, []
        for form, call, workload in held:
            yield from self._container_row(form, call, workload)
        if self.mode == "registry":
            yield from self.registry.rows()


def _container_launch(host: str, container_id: str, record: Record) -> str:
    """escape_launch_id of a docker launch: its container ID when the data names it, else the event that shows it."""
    return "docker:{}/{}".format(host, container_id) if container_id else address(reference(record))


def _one_or_many(values: List[str]) -> Union[str, List[str]]:
    return values if len(values) > 1 else values[0]


def _looks_like_inspect(text: str) -> bool:
    """docker inspect output (an array, or an object with HostConfig) rather than a Kubernetes audit event."""
    return text.startswith("[") or ('"HostConfig"' in text and '"objectRef"' not in text
                                    and '"protoPayload"' not in text and '"properties"' not in text)


def _incident(workload: Workload, host: str, cid: str, label: str) -> str:
    """escape_incident of a spec row (escape_engine.incident): a pod by its identity, a docker container by its id
    when known, anything else (a workload template, an unjoined create call) by its label."""
    if workload.platform == "kubernetes" and workload.pod_write and (workload.kind or "Pod") == "Pod":
        return incident_key(host, pod=pod_identity(workload.namespace, workload.name))
    return incident_key(host, cid, workload=label)


def _workload_label(workload: Workload, host: str) -> str:
    if workload.platform == "kubernetes":
        return "{}/{}/{}".format(workload.kind or "Pod", workload.namespace or "-", workload.name or "-")
    image = next((c.image for c in workload.containers if c.image), "")
    return "docker:{}/{}".format(host or "-", workload.name or image or "(unnamed)")


def run(records: Iterable[Record], *, allowed_host_paths: str, allowlist: Sequence[AllowRule] = (),
        suppressed: str = "exclude", finding: str = "", mode: str = "spec", field: str = "_raw") -> Iterator[Row]:
    """Inspect one complete stream of records (tests, one-shot use): feed then flush."""
    inspector = Inspector(allowed_host_paths=allowed_host_paths, allowlist=allowlist, suppressed=suppressed,
                          finding=finding, mode=mode, field=field)
    yield from inspector.feed(records)
    yield from inspector.flush()
