"""A docker named volume that binds a host directory, joined to the later create that mounts it by name.

`docker volume create --driver local --opt type=none --opt o=bind --opt device=/ hostroot` then
`docker run -v hostroot:/host alpine`: the create body names only the volume (issue 15, host access outside the spec).
"""
from typing import Any, Dict, List, Tuple

import pytest

from escape_engine import dockervolumes
from escape_engine.inspect import Inspector
from tests.unit.test_inspect_dockerbody import ALLOWED, form_line, kinds

VOLUME_CALL = 'time="2026-11-29T03:43:46.000000000Z" level=debug msg="Calling POST /v1.41/volumes/create"'
ROOT_VOLUME = '{"Driver":"local","DriverOpts":{"device":"/","o":"bind","type":"none"},"Labels":{},"Name":"hostroot"}'
PLAIN_VOLUME = '{"Driver":"local","DriverOpts":{},"Labels":{},"Name":"hostroot"}'


def create_call(name: str, stamp: str) -> str:
    return 'time="{}" level=debug msg="Calling POST /v1.41/containers/create?name={}"'.format(stamp, name)


def create_body(binds: str) -> str:
    # the shape the docker CLI sends for `docker run -v hostroot:/host alpine sh` (HostConfig.Binds)
    return ('{"Hostname":"","User":"","AttachStdin":true,"Tty":true,"Cmd":["sh"],"Image":"alpine",'
            '"HostConfig":{"Binds":' + binds + ',"NetworkMode":"default","RestartPolicy":{"Name":"no"}}}')


def feed(lines: List[str], newest_first: bool = True) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    records = [{"_raw": line, "_cd": "0:{}".format(i), "host": "lab", "source": "dockerd"}
               for i, line in enumerate(lines)]
    inspector = Inspector(allowed_host_paths=ALLOWED)
    stream = records[::-1] if newest_first else records
    rows = list(inspector.feed(stream)) + list(inspector.flush())
    return rows, inspector.counts


def creates(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [r for r in rows if r.get("escape_action") == "docker create of"]


def scenario(volume: str, binds: str = '["hostroot:/host"]') -> List[str]:
    return [VOLUME_CALL, form_line(volume, "2026-11-29T03:43:46.100000000Z"),
            create_call("rooted", "2026-11-29T03:44:10.000000000Z"),
            form_line(create_body(binds), "2026-11-29T03:44:10.000500000Z")]


@pytest.mark.parametrize("newest_first", [True, False])
def test_the_create_that_mounts_a_host_root_volume_is_a_host_root_bind(newest_first: bool) -> None:
    rows, _ = feed(scenario(ROOT_VOLUME), newest_first)
    [create] = creates(rows)
    assert create["escape_severity"] == "critical" and kinds(create) == ["host_path"]
    assert create["escape_detail"] == "host path / (volume hostroot bound to /host) (critical)"
    assert "0:1" in create["escape_evidence_cd"]      # the volume create's form data line is evidence
    assert create["escape_container"] == "rooted"


def test_a_read_only_mount_of_the_volume_stays_critical_for_the_host_root() -> None:
    rows, _ = feed(scenario(ROOT_VOLUME, '["hostroot:/host:ro"]'))
    [create] = creates(rows)
    assert create["escape_detail"] == "host path / (volume hostroot bound to /host, read-only) (critical)"


def test_the_mounts_form_of_the_same_volume_is_joined() -> None:
    mounts = ('{"Image":"alpine","HostConfig":{"Mounts":[{"Type":"volume","Source":"hostroot","Target":"/h"}]}}')
    lines = scenario(ROOT_VOLUME)[:3] + [form_line(mounts, "2026-11-29T03:44:10.000500000Z")]
    [create] = creates(feed(lines)[0])
    assert create["escape_detail"] == "host path / (volume hostroot bound to /h) (critical)"


def test_a_plain_volume_of_the_same_name_leaves_the_create_quiet() -> None:
    rows, _ = feed(scenario(PLAIN_VOLUME))
    assert rows == []


def test_the_definition_in_force_at_the_create_counts() -> None:
    """Defined as a bind of / after the create (a later volume of the same name): the create mounted the old one."""
    lines = [VOLUME_CALL, form_line(PLAIN_VOLUME, "2026-11-29T03:43:46.100000000Z"),
             create_call("rooted", "2026-11-29T03:44:10.000000000Z"),
             form_line(create_body('["hostroot:/host"]'), "2026-11-29T03:44:10.000500000Z"),
             form_line(ROOT_VOLUME, "2026-11-29T03:50:00.000000000Z")]
    rows, _ = feed(lines)
    assert creates(rows) == [] and [r["escape_action"] for r in rows] == ["docker volume create of"]


def test_a_volume_on_another_host_is_not_joined() -> None:
    lines = scenario(ROOT_VOLUME)
    records = [{"_raw": line, "_cd": "0:{}".format(i), "host": "other" if i < 2 else "lab", "source": "dockerd"}
               for i, line in enumerate(lines)]
    inspector = Inspector(allowed_host_paths=ALLOWED)
    rows = list(inspector.feed(records[::-1])) + list(inspector.flush())
    assert creates(rows) == []


def test_held_creates_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("escape_engine.inspect.MAX_HELD", 2)
    lines = scenario(ROOT_VOLUME)
    for n in range(3):
        stamp = "2026-11-29T03:45:0{}.000000000Z".format(n)
        lines += [create_call("c{}".format(n), stamp), form_line(create_body('["hostroot:/host"]'), stamp)]
    rows, _ = feed(lines)
    # newest first: c2 and c1 went out before the volume was seen (rated with what was known: nothing); the two
    # still held were joined
    assert sorted(r["escape_container"] for r in creates(rows)) == ["c0", "rooted"]


def test_definitions_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dockervolumes, "MAX_DEFINITIONS", 0)
    rows, counts = feed(scenario(ROOT_VOLUME))
    assert creates(rows) == [] and counts.get("volumes_dropped") is None
    inspector = Inspector(allowed_host_paths=ALLOWED)
    records = [{"_raw": line, "_cd": "0:{}".format(i), "host": "lab", "source": "dockerd"}
               for i, line in enumerate(scenario(ROOT_VOLUME))]
    list(inspector.feed(records[::-1])) + list(inspector.flush())
    assert any("volume create(s) past the per-search bound" in note for note in inspector.report())
