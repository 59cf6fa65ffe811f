"""Issue 18, Enterprise Security: the detections whose alert rows carry escape_incident are the ones whose risk and
finding settings group by it (tools/es.py INCIDENT_ANALYTICS), checked both ways on the replay of every detection's
samples, and the built savedsearches.conf carries those settings."""
import json
from pathlib import Path
from typing import List

import pytest

from escape_engine.incident import FIELD
from tools import conffile, content, es, replay


@pytest.mark.parametrize("members", replay.sample_groups(), ids=lambda m: "+".join(d.slug for d in m))
def test_the_rows_carry_an_incident_exactly_where_es_groups_by_it(members: List[content.Detection],
                                                                  built_app: Path) -> None:
    alerts = replay.replay(replay.sample_specs(members[0], "fires"), content.CONTENT, built_app,
                           only=[d.slug for d in members], fields=[FIELD])
    for detection in members:
        rows = [a for a in alerts if a["detection"] == detection.stanza]
        keyed = [a for a in rows if a["fields"][FIELD]]  # type: ignore[index]
        assert rows, detection.slug
        if detection.analytic in es.INCIDENT_ANALYTICS:
            assert keyed, "{}: no alert row carries {}".format(detection.slug, FIELD)
        else:
            assert not keyed, "{}: rows carry {} but ES does not group by it".format(detection.slug, FIELD)


def test_the_built_conf_groups_risk_and_findings_by_the_incident(built_app: Path) -> None:
    stanzas = conffile.parse(built_app / "default" / "savedsearches.conf")
    rules = {d.stanza: d for d in content.detections(content.CONTENT)}
    grouped = 0
    for name, keys in stanzas.items():
        if name not in rules:
            continue
        risk = json.loads(keys["action.risk.param._risk"])
        objects = [(r["risk_object_field"], r["risk_object_type"]) for r in risk if "risk_object_field" in r]
        entities = json.loads(keys.get("action.notable.param._entities", "[]"))
        if rules[name].analytic in es.INCIDENT_ANALYTICS:
            grouped += 1
            assert (FIELD, "other") in objects and ("host", "system") in objects, name
            assert entities in ([], [{"risk_object_field": FIELD, "risk_object_type": "other", "risk_score": 0}]), name
        else:
            assert FIELD not in json.dumps(risk) and FIELD not in json.dumps(entities), name
        assert keys["action.notable"] == "0" and keys["action.risk"] == "0", name  # still inert without ES
    assert grouped == 7
