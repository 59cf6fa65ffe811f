"""Docker create bodies read the way dockerd decodes them (Go encoding/json), and rated in full.

The cases start from the lab's real dockerd --debug lines (tests/data/lab-run1) and change the body the way a client
that writes its own API request can: other key spellings, keys given twice, settings the docker CLI has no flag for.
"""
import gzip
import json
from typing import Any, Dict, List, Tuple

import pytest

from escape_engine import docker, gojson
from escape_engine.inspect import Inspector, run
from escape_engine.specrules import findings, parse_allowed_paths
from tests.conftest import DATA

ALLOWED = "/var/log,/etc/localtime,/usr/share/zoneinfo"
LAB_LOG = DATA / "lab-run1" / "dockerd-debug.log.gz"


def lab_pair(name: str) -> Tuple[str, str]:
    """The Calling line of container `name`'s create and the body text of its form data line."""
    lines = gzip.decompress(LAB_LOG.read_bytes()).decode("utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.endswith("/containers/create?name={}\"".format(name)))
    form = next(line for line in lines[at + 1:at + 4] if "form data:" in line)
    message = docker.message(form)
    assert message is not None
    return lines[at], message[len("form data: "):]


def form_line(body: str, stamp: str = "2026-11-29T03:43:47.327566930Z") -> str:
    quoted = body.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return 'time="{}" level=debug msg="form data: {}"'.format(stamp, quoted)


def rows_for(*lines: str, newest_first: bool = True) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    records = [{"_raw": line, "_cd": "0:{}".format(i), "host": "lab", "source": "dockerd"}
               for i, line in enumerate(lines)]
    inspector = Inspector(allowed_host_paths=ALLOWED)
    stream = records[::-1] if newest_first else records
    rows = list(inspector.feed(stream)) + list(inspector.flush())
    return rows, inspector.counts


def kinds(row: Dict[str, Any]) -> List[str]:
    value = row["escape_finding"]
    return value if isinstance(value, list) else [value]


def rate(host_config: Any) -> List[Tuple[str, str]]:
    workload = docker.create_workload(gojson.loads('{"Image":"x","HostConfig":' + host_config + "}"), "c")
    return [(f.finding, f.severity) for f in findings(workload, parse_allowed_paths(ALLOWED))]


# -- Go's key matching and duplicate keys ---------------------------------------------------------------------------
@pytest.mark.parametrize("old, new", [
    ('"HostConfig":', '"hostconfig":'),
    ('"Binds":', '"binds":'),
    ('"Binds":', '"BINDS":'),
    ('"Binds":', '"B\\u0131nd\\u017f":'),     # dotless i and long s: Go folds them onto I and S
])
def test_keys_match_fields_case_insensitively_like_go(old: str, new: str) -> None:
    call, body = lab_pair("esc02-chroot")
    assert old in body
    rows, _ = rows_for(call, form_line(body.replace(old, new, 1)))
    assert [(kinds(r), r["escape_severity"]) for r in rows] == [(["host_path"], "critical")]


def test_lowercase_privileged_in_a_lowercase_host_config_is_privileged() -> None:
    call, body = lab_pair("ben02-web")
    body = body.replace('"HostConfig":', '"hostconfig":').replace('"Privileged":false', '"privileged":true')
    rows, _ = rows_for(call, form_line(body))
    assert kinds(rows[0]) == ["privileged"] and rows[0]["escape_severity"] == "critical"


def test_a_second_host_config_is_merged_into_the_first_and_reported() -> None:
    call, body = lab_pair("esc02-chroot")
    # Python's json keeps only the last HostConfig (harmless); dockerd merges it into the first, Binds included.
    body = body[:-1] + ',"HostConfig":{"NetworkMode":"default","Binds":null,"Privileged":false}}'
    body = body.replace('"Binds":null', '"Dns":[]', 1)
    rows, _ = rows_for(call, form_line(body))
    assert sorted(kinds(rows[0])) == ["duplicate_key", "host_path"]
    assert rows[0]["escape_severity"] == "critical"
    assert "HostConfig more than once" in " ".join(rows[0]["escape_detail"])


def test_for_a_field_given_twice_the_later_value_wins_and_a_slice_element_is_merged() -> None:
    assert rate('{"Privileged":true,"privileged":false}') == [("duplicate_key", "high")]
    merged = rate('{"Mounts":[{"Type":"bind","Source":"/","Target":"/a"}],"mounts":[{"Target":"/b"}]}')
    assert sorted(merged) == [("duplicate_key", "high"), ("host_path", "critical")]


def test_go_refuses_nan_and_an_object_is_never_a_list() -> None:
    with pytest.raises(ValueError):
        gojson.loads('{"a":NaN}')
    decoded = gojson.decode(gojson.loads('{"Binds":{"a":"b"},"CapAdd":["SYS_ADMIN",null]}'),
                            {"Binds": "strings", "CapAdd": "strings"})
    assert decoded.value == {"Binds": None, "CapAdd": ["SYS_ADMIN", ""]} and decoded.type_errors == 1
    assert gojson.fold("B\u0131nd\u017f") == "BINDS" and gojson.fold("\u212aey") == "KEY"


# -- settings rated ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host_config, expected", [
    ('{"DeviceCgroupRules":["b *:* rwm"]}', [("device", "critical")]),
    ('{"DeviceCgroupRules":["a *:* rwm"]}', [("device", "critical")]),
    ('{"DeviceCgroupRules":["c *:* rwm"]}', [("device", "critical")]),
    ('{"DeviceCgroupRules":["c 10:229 rwm"]}', [("device", "high")]),
    ('{"Devices":[{"PathOnHost":"/dev/nvme0n1","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}]}',
     [("device", "critical")]),
    ('{"UTSMode":"host"}', [("host_uts", "low")]),
    ('{"UsernsMode":"host"}', [("host_userns", "medium")]),
    ('{"CgroupnsMode":"host"}', [("host_cgroupns", "low")]),
    ('{"SecurityOpt":["label=disable"]}', [("selinux_unconfined", "low")]),
    ('{"SecurityOpt":["label:disable"]}', [("selinux_unconfined", "low")]),
    ('{"SecurityOpt":["apparmor=unconfined","seccomp:unconfined"]}',
     [("seccomp_unconfined", "low"), ("apparmor_unconfined", "low")]),
    # --security-opt systempaths=unconfined: the CLI sends empty lists (null keeps the defaults)
    ('{"MaskedPaths":[],"ReadonlyPaths":[]}', [("proc_unmasked", "medium"), ("proc_unmasked", "high")]),
    ('{"MaskedPaths":null,"ReadonlyPaths":null}', []),
    ('{"CapAdd":["ALL"]}', [("capability", "critical")]),
    ('{"CapAdd":["all"]}', [("capability", "critical")]),
    ('{"CapAdd":["cap_sys_admin"]}', [("capability", "critical")]),
    ('{"Mounts":[{"Type":"bind","Source":"/proc/sys/kernel","Target":"/k","ReadOnly":true}]}',
     [("host_path", "critical")]),
    ('{"Binds":["/sys/kernel/security:/s:ro"]}', [("host_path", "critical")]),
    ('{"Binds":["/run/user/1000/podman/podman.sock:/run/podman.sock"]}', [("host_path", "critical")]),
    ('{"Binds":["/home/dev/.docker/run/docker.sock:/var/run/docker.sock"]}', [("host_path", "critical")]),
    ('{"Binds":["/run/k3s/containerd/containerd.sock:/c.sock"]}', [("host_path", "critical")]),
    ('{"Binds":["/var/lib/etcd:/etcd:ro"]}', [("host_path", "critical")]),
    # a local-driver volume that binds a host directory, declared inline in the create
    (('{"Mounts":[{"Type":"volume","Source":"hostroot","Target":"/host","VolumeOptions":{"DriverConfig":'
      '{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]}'), [("host_path", "critical")]),
])
def test_host_config_settings_are_rated(host_config: str, expected: List[Tuple[str, str]]) -> None:
    assert rate(host_config) == expected


def test_a_volume_created_as_a_bind_of_the_host_root_is_a_finding() -> None:
    volume = ('{"Driver":"local","DriverOpts":{"device":"/","o":"bind","type":"none"},"Labels":{},'
              '"Name":"hostroot"}')
    rows, _ = rows_for('time="2026-11-29T03:43:46.0Z" level=debug msg="Calling POST /v1.41/volumes/create"',
                       form_line(volume, "2026-11-29T03:43:46.1Z"))
    assert len(rows) == 1 and rows[0]["escape_severity"] == "critical"
    assert rows[0]["escape_action"] == "docker volume create of" and rows[0]["escape_container"] == "hostroot"
    assert rows[0]["escape_launch"] == "0"
    plain = volume.replace('"device":"/","o":"bind","type":"none"', '"size":"1g"')
    assert rows_for(form_line(plain))[0] == []


# -- refused by an authorization plugin ----------------------------------------------------------------------------
@pytest.mark.parametrize("newest_first", [True, False])
def test_a_create_denied_by_an_authorization_plugin_is_counted_not_alerted(newest_first: bool) -> None:
    call, body = lab_pair("esc02-chroot")
    denied = ('time="2026-11-29T03:43:47.328000000Z" level=error msg="AuthZRequest for POST '
              '/v1.41/containers/create?name=esc02-chroot returned error: authorization denied by plugin '
              'opa-docker-authz: request rejected by administrative policy"')
    rows, counts = rows_for(call, form_line(body), denied, newest_first=newest_first)
    assert rows == [] and counts == {"docker_denied": 1}
    other = denied.replace("name=esc02-chroot", "name=other")
    rows, counts = rows_for(call, form_line(body), other, newest_first=newest_first)
    assert [r["escape_container"] for r in rows] == ["esc02-chroot"] and counts == {}


def test_the_lab_capture_reads_the_same_through_the_go_decoder() -> None:
    lines = gzip.decompress(LAB_LOG.read_bytes()).decode("utf-8").split("\n")
    records = [{"_raw": line, "_cd": "0:{}".format(i), "host": "lab"} for i, line in enumerate(lines) if line]
    rows = list(run(records[::-1], allowed_host_paths=ALLOWED))
    assert not any("duplicate_key" in kinds(r) for r in rows)
    assert {r["escape_container"] for r in rows} >= {"esc02-chroot", "esc04-sock", "esc09-capsysadmin"}


def test_inspect_effects_are_not_requests() -> None:
    """docker inspect shows label=disable for every privileged or host-PID container and CgroupnsMode host by
    default on cgroup v1 hosts: effects of other settings, not findings of their own (a create body asking for
    them is one)."""
    items = json.loads((DATA / "lab-run1" / "docker-inspect.json").read_text(encoding="utf-8"))
    for item in items:
        for workload, _ in docker.inspect_workloads(json.dumps(item)):
            found = {f.finding for f in findings(workload, parse_allowed_paths(ALLOWED))}
            assert not found & {"selinux_unconfined", "host_cgroupns"}, item["Name"]
