"""Splunk Enterprise Security settings of a detection: the optional `es:` block of content/detections/<slug>.yml.

    es:
      security_domain: endpoint          # access | endpoint | network | threat | identity | audit
      notable: true                      # false: risk records only (the allowlisted hits)
      risk_score: 80                     # 0-100, per risk object
      risk_objects: [{field: host, type: system}]
      threat_objects: [{field: escape_image, type: image}]   # optional
      drilldown: '`escape_kube_audit` host="$host$"'          # optional: the evidence search, $field$ from the notable

Without the block a detection gets the defaults below (risk object `host` as a system, the score of its severity,
a drilldown over its data scopes on that host). The keys rendered are the ones Splunk Enterprise Security documents
for correlation searches in savedsearches.conf (ES "Configure correlation searches" / alert_actions.conf of
SA-ThreatIntelligence: action.notable.param.*, action.risk.param.*; core savedsearches.conf.spec:
action.<action_name> = <boolean>, action.<action_name>.param.<name>). Both actions ship switched off
(action.notable = 0, action.risk = 0), so a Splunk without ES never calls an alert action it does not have; with ES,
enable them per search (README, "Enterprise Security").

One incident, one group: the alert rows of the container and Linux analytics carry `escape_incident`
(escape_engine/incident.py: the same key on the spec finding, the threshold contribution and the Linux chain or
attempt of one container). ES groups by a risk object, so that key becomes one:
- risk (ES 7.x and 8.x): a second risk object, the incident (type other), with the detection's score beside the host.
  The risk data model and the risk incident rules of risk-based alerting aggregate by risk_object (ES "Risk-based
  alerting", risk incident rules such as "Risk Threshold Exceeded For Object Over 24 Hour Period"); ES 8's
  finding-based detections group findings and intermediate findings by entity, which is the risk object (ES 8
  "Create finding groups", group type Entity).
- findings (ES 8.x): `action.notable.param._entities` names the entity of the finding the notable action writes
  (ESCU's contentctl savedsearches template renders it on every detection, for ES 7.x installs too, where no
  documented notable parameter reads it): the incident, so a finding groups with the risk events of its incident;
  risk score 0 there (the risk action carries the score).
Suppression (`alert.suppress.fields`) stays per detection: it throttles repeats of one alert; suppressing by the
incident would drop a container's second, different alert. Windows rows name no container id and ESXi rows a
hypervisor host: their detections carry no incident and their finding's entity is their first risk object (host).
"""
import json
import re
from typing import Any, Dict, List, Sequence

from escape_engine.ground import SEVERITIES
from escape_engine.incident import FIELD as INCIDENT_FIELD

DOMAINS = ("access", "endpoint", "network", "threat", "identity", "audit")
RISK_OBJECT_TYPES = ("system", "user", "other")
KEYS = ("security_domain", "notable", "risk_score", "risk_objects", "threat_objects", "drilldown")
# Default risk score per severity: Splunk's ESCU scale (impact x confidence / 100) spread over our five levels.
SEVERITY_SCORE = dict(zip(SEVERITIES, (5, 25, 50, 80, 100)))
# The analytics whose alert rows carry escape_incident (tests/integration/test_es_incident.py replays every
# detection's samples and checks this both ways).
INCIDENT_ANALYTICS = ("container", "linux")
INCIDENT_OBJECT_TYPE = "other"  # neither a system nor a user: ES's third risk object type


def validate(block: Any, where: str) -> None:
    """Raise ValueError saying what is wrong with an `es:` block."""
    if not isinstance(block, dict):
        raise ValueError("{}: es must be a mapping with {}".format(where, ", ".join(KEYS)))
    unknown = sorted(set(block) - set(KEYS))
    if unknown:
        raise ValueError("{}: es has unknown keys {} (allowed: {})".format(where, ", ".join(unknown), ", ".join(KEYS)))
    if "security_domain" in block and block["security_domain"] not in DOMAINS:
        raise ValueError("{}: es.security_domain must be one of {}".format(where, ", ".join(DOMAINS)))
    if "notable" in block and not isinstance(block["notable"], bool):
        raise ValueError("{}: es.notable must be true or false".format(where))
    score = block.get("risk_score", 0)
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 100:
        raise ValueError("{}: es.risk_score must be a whole number from 0 to 100".format(where))
    for key in ("risk_objects", "threat_objects"):
        entries = block.get(key, [])
        if not isinstance(entries, list) or (key == "risk_objects" and key in block and not entries):
            raise ValueError("{}: es.{} must be a non-empty list of {{field, type}}".format(where, key))
        for entry in entries:
            if not isinstance(entry, dict) or sorted(entry) != ["field", "type"] \
                    or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", str(entry["field"])):
                raise ValueError("{}: es.{} entries are {{field: <field name>, type: <type>}}, not {!r}".format(
                    where, key, entry))
            if entry["field"] == INCIDENT_FIELD:
                raise ValueError("{}: es.{}: {} is added by tools/es.py for the {} analytics".format(
                    where, key, INCIDENT_FIELD, " and ".join(INCIDENT_ANALYTICS)))
            if key == "risk_objects" and entry["type"] not in RISK_OBJECT_TYPES:
                raise ValueError("{}: es.risk_objects type must be one of {}".format(
                    where, ", ".join(RISK_OBJECT_TYPES)))
    if "drilldown" in block and (not isinstance(block["drilldown"], str) or "\n" in block["drilldown"].strip()):
        raise ValueError("{}: es.drilldown must be one line of SPL".format(where))


def keys(*, title: str, analytic: str, severity: str, description: str, search: str, scopes: Sequence[str],
         block: Dict[str, Any]) -> Dict[str, str]:
    """The ES keys of one saved search, in file order."""
    validate(block, title)
    base = search.split("\n|", 1)[0]  # the base search: the scopes that select events (not by=`escape_kube_cluster`)
    used = [s for s in scopes if "`{}`".format(s) in base] or list(scopes[:1])
    scope = "({})".format(" OR ".join("(`{}`)".format(s) for s in used)) if len(used) > 1 else "`{}`".format(used[0])
    drilldown = block.get("drilldown") or '{} host="$host$"'.format(scope)
    score = block.get("risk_score", SEVERITY_SCORE[severity])
    risk_objects: List[Dict[str, str]] = block.get("risk_objects") or [{"field": "host", "type": "system"}]
    entity = risk_objects[0]
    if analytic in INCIDENT_ANALYTICS:
        entity = {"field": INCIDENT_FIELD, "type": INCIDENT_OBJECT_TYPE}
        risk_objects = list(risk_objects) + [entity]
    risk: List[Dict[str, Any]] = [
        {"risk_object_field": o["field"], "risk_object_type": o["type"], "risk_score": score} for o in risk_objects]
    risk += [{"threat_object_field": o["field"], "threat_object_type": o["type"]}
             for o in block.get("threat_objects", [])]
    first_sentence = description.split(". ")[0].rstrip(".") + "."
    result = {
        "action.notable": "0",
        "action.notable.param.rule_title": "{} on $host$".format(title),
        "action.notable.param.rule_description": "{} $escape_summary$".format(first_sentence),
        "action.notable.param.security_domain": block.get("security_domain", "endpoint"),
        "action.notable.param.severity": severity,
        "action.notable.param.drilldown_name": "Events of this detection's data on $host$",
        "action.notable.param.drilldown_search": drilldown,
        "action.notable.param.drilldown_earliest_offset": "$info_min_time$",
        "action.notable.param.drilldown_latest_offset": "$info_max_time$",
        "action.notable.param._entities": json.dumps(
            [{"risk_object_field": entity["field"], "risk_object_type": entity["type"], "risk_score": 0}]),
        "action.risk": "0",
        "action.risk.param._risk": json.dumps(risk),
        "action.risk.param._risk_message": "$escape_summary$",
    }
    if block.get("notable") is False:
        # risk only: no notable parameters at all, so enabling the notable action by mistake gives an empty title
        result = {k: v for k, v in result.items() if not k.startswith("action.notable.param.")}
    return result
