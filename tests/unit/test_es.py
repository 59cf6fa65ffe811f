"""Enterprise Security settings of every detection (tools/es.py): correlation-search metadata, notable fields, risk
objects and scores, ATT&CK annotations and drilldowns, inert where ES is absent."""
import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tools import content, contentlint, es, spl, spllint

DETECTIONS = content.detections()
KNOWLEDGE = contentlint.knowledge_from(content.CONTENT, ROOT / "package")
ENGINE = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "package" / "bin" / "escape_engine").glob("*.py"))


def _emitted(field: str) -> bool:
    """A field our commands set (quoted key or keyword argument) or one every event has."""
    return field in ("host", "source", "sourcetype") or '"{}"'.format(field) in ENGINE \
        or re.search(r"\b{}=".format(re.escape(field)), ENGINE) is not None


@pytest.mark.parametrize("item", DETECTIONS, ids=[d.slug for d in DETECTIONS])
def test_every_detection_carries_es_metadata_that_is_inert_without_es(item: content.Detection) -> None:
    keys = content.saved_search(item)
    assert keys["action.correlationsearch.enabled"] == "1"
    assert keys["action.correlationsearch.label"] == item.stanza
    assert json.loads(keys["action.correlationsearch.annotations"])["mitre_attack"] == item.mitre_attack
    assert keys["action.notable"] == "0" and keys["action.risk"] == "0"  # no alert action Splunk lacks without ES
    risk = json.loads(keys["action.risk.param._risk"])
    objects = [r for r in risk if "risk_object_field" in r]
    assert objects, "at least one risk object"
    for entry in risk:
        field = entry.get("risk_object_field") or entry.get("threat_object_field")
        assert _emitted(field), "{}: {} is not a field the alert rows carry".format(item.slug, field)
    for entry in objects:
        assert entry["risk_object_type"] in es.RISK_OBJECT_TYPES
        assert 0 <= entry["risk_score"] <= 100
    assert keys["action.risk.param._risk_message"] == "$escape_summary$"


@pytest.mark.parametrize("item", [d for d in DETECTIONS if (d.data.get("es") or {}).get("notable", True)],
                         ids=lambda d: d.slug)
def test_notable_drilldown_searches_the_detections_own_data_and_passes_the_lint(item: content.Detection) -> None:
    keys = content.saved_search(item)
    assert keys["action.notable.param.severity"] == item.severity
    assert keys["action.notable.param.security_domain"] in es.DOMAINS
    assert "$host$" in keys["action.notable.param.rule_title"]
    drilldown = keys["action.notable.param.drilldown_search"]
    base = spl.split_pipes(content.producer_search(item) or item.search)[0]  # a reader: its producer's events
    for macro in re.findall(r"`(escape_[a-z_]+)`", drilldown):
        assert "`{}`".format(macro) in base, "{} is not a scope of the base search".format(macro)
    assert spllint.lint_search(drilldown.replace("$host$", "h1"), KNOWLEDGE) == []
    assert keys["action.notable.param.drilldown_earliest_offset"] == "$info_min_time$"


def test_allowlisted_hits_leave_a_low_risk_record_and_no_notable() -> None:
    item = next(d for d in DETECTIONS if d.slug == "container_allowlisted_workload")
    keys = content.saved_search(item)
    assert not any(k.startswith("action.notable.param.") for k in keys)
    low = json.loads(keys["action.risk.param._risk"])[0]["risk_score"]
    others = [json.loads(content.saved_search(d)["action.risk.param._risk"])[0]["risk_score"] for d in DETECTIONS
              if d.type != "health" and d.slug != item.slug]
    assert 0 < low < min(others)


@pytest.mark.parametrize("block, message", [
    ({"security_domain": "cloud"}, "security_domain"),
    ({"risk_score": 101}, "risk_score"),
    ({"risk_score": True}, "risk_score"),
    ({"risk_objects": []}, "risk_objects"),
    ({"risk_objects": [{"field": "host", "type": "asset"}]}, "type must be one of"),
    ({"risk_objects": [{"field": "a b", "type": "system"}]}, "entries"),
    ({"notable": "yes"}, "notable"),
    ({"drilldown": "a\nb"}, "one line"),
    ({"colour": 1}, "unknown keys"),
])
def test_bad_es_blocks_are_refused_with_a_clear_message(block: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        es.validate(block, "x.yml")
    data = dict(DETECTIONS[0].data, es=block)
    with pytest.raises(content.DetectionError, match=message):
        content.validate_detection(data, DETECTIONS[0].path)


@pytest.mark.parametrize("item", DETECTIONS, ids=[d.slug for d in DETECTIONS])
def test_risk_and_findings_group_by_the_incident_where_the_rows_carry_one(item: content.Detection) -> None:
    """Issue 18: every alert about one container carries escape_incident; ES groups by risk object (risk-based
    alerting's risk incident rules, ES 8's finding groups by entity), so the incident is a risk object and the
    finding's entity. tests/integration/test_es_incident.py checks which analytics' rows carry it."""
    keys = content.saved_search(item)
    risk = json.loads(keys["action.risk.param._risk"])
    incident = [r for r in risk if r.get("risk_object_field") == "escape_incident"]
    host = next(r for r in risk if r.get("risk_object_field") == "host")
    if item.analytic in ("container", "linux"):
        assert incident == [{"risk_object_field": "escape_incident", "risk_object_type": "other",
                             "risk_score": host["risk_score"]}]
        entity = {"risk_object_field": "escape_incident", "risk_object_type": "other", "risk_score": 0}
    else:
        assert incident == []
        entity = {"risk_object_field": "host", "risk_object_type": "system", "risk_score": 0}
    if (item.data.get("es") or {}).get("notable", True):
        assert json.loads(keys["action.notable.param._entities"]) == [entity]
    else:
        assert "action.notable.param._entities" not in keys
    assert "escape_incident" not in keys.get("alert.suppress.fields", "")  # throttling stays per alert


def test_an_es_block_may_not_name_the_incident_itself() -> None:
    with pytest.raises(ValueError, match="added by tools/es.py"):
        es.validate({"risk_objects": [{"field": "escape_incident", "type": "other"}]}, "x.yml")
