"""The add-on's own search-time knowledge (package/default) over the samples, through the strict offline evaluator.

Checks the owned / borrowed split of docs/sourcetypes.md, the expected fields and eventtypes of every sample event,
the JSON cutoff on a real-size Kubernetes event, and that samples, provenance, pytest-splunk-addon's sample
definitions and the docs stay in step.
"""
import functools
import importlib.util
import json
import re
from typing import Any, Dict, List, Tuple

import pcre2
import pytest
import yaml

from tests.conftest import ROOT
from tools import conffile
from tools.searchtime import INDEX_TIME_KEYS, JSON_EXTRACTION_CUTOFF, SearchTimeKnowledge, json_fields

APP = ROOT / "package"
DEFAULT = APP / "default"
KNOWLEDGE = ROOT / "tests" / "knowledge"
SAMPLES = KNOWLEDGE / "samples"

OWNED = ("docker:daemon", "docker:events", "docker:inspect", "podman:events", "kube:apiserver-audit")
OWNED_WITH_INDEX_TIME = ("docker:daemon", "docker:events", "docker:inspect", "podman:events")
BORROWED = ("source::kubernetes", "linux:audit", "auditd", "sysmon:linux", "XmlWinEventLog", "WinEventLog",
            "source::XmlWinEventLog:Security", "source::XmlWinEventLog:Microsoft-Windows-Sysmon/Operational",
            "source::WinEventLog:Security", "vmw-syslog", "vmware:esxlog:vmkernel", "vmware:esxlog:vmkwarning",
            "vmware:esxlog:hostd", "vmware:esxlog:shell")
# CIM fields the owned sourcetypes may set (Change data model)
CIM_FIELDS = {"action", "change_type", "command", "object", "object_id", "object_category", "object_path", "result",
              "status", "dest", "dvc", "src", "user", "vendor_product"}


@functools.cache
def props() -> Dict[str, Dict[str, str]]:
    return conffile.parse(DEFAULT / "props.conf")


@functools.cache
def transforms() -> Dict[str, Dict[str, str]]:
    return conffile.parse(DEFAULT / "transforms.conf")


@pytest.fixture(scope="module")
def knowledge() -> SearchTimeKnowledge:
    return SearchTimeKnowledge.from_app(APP)


@functools.cache
def psa_samples() -> Dict[str, Dict[str, str]]:
    stanzas = conffile.parse(KNOWLEDGE / "pytest-splunk-addon-data.conf")
    stanzas.pop("default", None)
    return stanzas


@functools.cache
def expected() -> Dict[str, Any]:
    with (KNOWLEDGE / "expected_fields.yml").open(encoding="utf-8") as handle:
        data: Dict[str, Any] = yaml.safe_load(handle)
    return data


def sample_events(name: str, meta: Dict[str, str]) -> List[str]:
    """Events as pytest-splunk-addon's modinput makes them: one per line, or per breaker match (text read with
    universal newlines, so CRLF becomes LF; the 0x1D inside ENRICHED audit records is not a line break there)."""
    text = (SAMPLES / name).read_bytes().decode("utf-8").replace("\r\n", "\n")
    if "breaker" in meta:
        starts = [m.start() for m in re.finditer(meta["breaker"], text, re.MULTILINE)]
        assert starts and starts[0] == 0, "{}: the breaker must match at the start".format(name)
        return [text[a:b].strip() for a, b in zip(starts, starts[1:] + [len(text)])]
    return [line for line in text.split("\n") if line]


def all_cases() -> List[Tuple[str, int]]:
    return [(name, index) for name, entry in expected().items() for index in range(len(entry["events"]))]


# ---------------------------------------------------------------------------------------------------------------
# The owned / borrowed split


def extracted_field_names(keys: Dict[str, str], transform_stanzas: Dict[str, Dict[str, str]]) -> List[str]:
    """Every field a props stanza creates: EXTRACT groups, REPORT FORMAT names, FIELDALIAS targets, EVAL names."""
    names: List[str] = []
    for key, value in keys.items():
        if key.startswith("EXTRACT-"):
            regex = value.rsplit(" in ", 1)[0] if re.search(r" in [\w.:{}]+$", value) else value
            names += list(pcre2.compile(regex).groupindex)
        elif key.startswith("REPORT-"):
            for transform in (t.strip() for t in value.split(",")):
                names += [pair.split("::")[0] for pair in transform_stanzas[transform].get("FORMAT", "").split()]
        elif key.startswith("FIELDALIAS-"):
            tokens = value.split()
            names += tokens[2::3]
        elif key.startswith("EVAL-"):
            names.append(key[5:])
    return names


def test_every_listed_sourcetype_has_a_stanza() -> None:
    stanzas = props()
    for name in OWNED + BORROWED:
        assert name in stanzas, name
    assert set(stanzas) - {"default"} == set(OWNED + BORROWED), "document a new stanza in this test and docs/sourcetypes.md"


@pytest.mark.parametrize("stanza", BORROWED)
def test_borrowed_stanzas_carry_only_escape_search_time_extractions(stanza: str) -> None:
    keys = props()[stanza]
    for key in keys:
        assert key not in INDEX_TIME_KEYS, "{}: index-time key {} on a borrowed sourcetype".format(stanza, key)
        assert key != "KV_MODE", "{}: KV_MODE belongs to the vendor add-on".format(stanza)
        assert not key.startswith(("FIELDALIAS-", "EVAL-", "LOOKUP-")), "{}: {} on a borrowed sourcetype".format(stanza, key)
        assert key.startswith(("EXTRACT-escape_", "REPORT-escape_")), "{}: {}".format(stanza, key)
    names = extracted_field_names(keys, transforms())
    assert names, stanza
    for name in names:
        assert name.startswith("escape_"), "{}: field {} is not escape_-prefixed".format(stanza, name)


@pytest.mark.parametrize("stanza", OWNED)
def test_owned_stanzas_use_only_allowed_index_time_keys_and_escape_or_cim_fields(stanza: str) -> None:
    keys = props()[stanza]
    index_time = {k for k in keys if k.isupper() and "-" not in k and k != "KV_MODE"}
    assert index_time <= INDEX_TIME_KEYS, index_time - INDEX_TIME_KEYS
    if stanza in OWNED_WITH_INDEX_TIME:
        assert {"LINE_BREAKER", "SHOULD_LINEMERGE", "TRUNCATE", "TIME_PREFIX", "TIME_FORMAT"} <= index_time
        assert keys["SHOULD_LINEMERGE"] == "false"
        assert int(keys["TRUNCATE"]) >= 100000, "TRUNCATE must be large enough for big JSON and create bodies"
    else:
        assert not index_time, "{} is search time only".format(stanza)
    for key in keys:
        if "-" in key and not key.startswith("EVAL-"):
            assert key.split("-", 1)[1].startswith("escape_"), key
    for name in extracted_field_names(keys, transforms()):
        assert name.startswith("escape_") or name in CIM_FIELDS, "{}: {}".format(stanza, name)


def test_every_transform_and_eventtype_is_escape_prefixed_and_tagged() -> None:
    assert all(name.startswith("escape_") for name in transforms() if name != "default")
    eventtypes = conffile.parse(DEFAULT / "eventtypes.conf")
    tags = conffile.parse(DEFAULT / "tags.conf")
    for name in eventtypes:
        assert name.startswith("escape_"), name
        assert tags["eventtype=" + name].get("escape_to_host") == "enabled", name


# ---------------------------------------------------------------------------------------------------------------
# Samples through the evaluator


def test_samples_provenance_psa_and_expectations_agree() -> None:
    files = {p.name for p in SAMPLES.iterdir() if p.name != "PROVENANCE.md"}
    provenance = (SAMPLES / "PROVENANCE.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| ([^|\s]+) \|", provenance, re.MULTILINE)) - {"file"}
    assert files <= rows, "samples without a provenance row: {}".format(sorted(files - rows))
    # other parts keep their detection fixtures in the same folder; the knowledge samples are the ones
    # pytest-splunk-addon ingests, and each of them has its expectations
    assert set(psa_samples()) <= files, "pytest-splunk-addon-data.conf names missing files"
    assert set(expected()) == set(psa_samples()), "expected_fields.yml must cover exactly the pytest-splunk-addon samples"
    sourcetypes = {meta["sourcetype"] for meta in psa_samples().values()}
    assert {s for s in OWNED + BORROWED if not s.startswith("source::")} <= sourcetypes


@pytest.mark.parametrize("name, index", all_cases(), ids=lambda v: str(v))
def test_sample_event_gives_the_expected_fields_and_eventtypes(knowledge: SearchTimeKnowledge, name: str,
                                                               index: int) -> None:
    meta = psa_samples()[name]
    events = sample_events(name, meta)
    entries = expected()[name]["events"]
    assert len(events) == len(entries), "{}: {} events, {} expectations".format(name, len(events), len(entries))
    entry = entries[index]
    fields = knowledge.fields({"_raw": events[index], "sourcetype": meta["sourcetype"], "source": meta["source"],
                               "host": "labhost"})
    want = entry.get("fields") or {}
    for field, value in want.items():
        assert fields.get(field) == value, "{}[{}] {}".format(name, index, field)
    extra = sorted(f for f in fields if f.startswith("escape_") and f not in want)
    assert not extra, "{}[{}]: unlisted escape_ fields {}".format(name, index, extra)
    for field in entry.get("absent") or []:
        assert field not in fields, "{}[{}]: {} should not be extracted".format(name, index, field)
    assert knowledge.eventtypes(fields) == sorted(entry["eventtypes"]), "{}[{}]".format(name, index)


def test_every_eventtype_matches_some_sample(knowledge: SearchTimeKnowledge) -> None:
    seen = set()
    for entry in expected().values():
        for item in entry["events"]:
            seen.update(item["eventtypes"])
    assert seen == set(knowledge.eventtype_searches), set(knowledge.eventtype_searches) - seen


def test_large_kube_event_decision_is_only_visible_through_raw(knowledge: SearchTimeKnowledge) -> None:
    raw = (SAMPLES / "kube_synthetic_large_deployment.json").read_text(encoding="utf-8").rstrip("\n")
    data = raw.encode("utf-8")
    assert len(data) > 20 * 1024
    decision_at = data.index(b'"authorization.k8s.io/decision"')
    assert data.index(b'"requestObject"') < decision_at and decision_at > JSON_EXTRACTION_CUTOFF
    fields = knowledge.fields({"_raw": raw, "sourcetype": "kube:apiserver-audit", "source": "audit.log", "host": "h"})
    assert "annotations.authorization.k8s.io/decision" not in fields
    assert fields["escape_kube_decision"] == "allow"
    # the whole text does carry it, and the fields the detections key on are inside the cutoff
    assert json_fields(raw, cutoff=None)["annotations.authorization.k8s.io/decision"] == ["allow"]
    for field, value in (("objectRef.resource", "deployments"), ("verb", "create"), ("stage", "ResponseComplete"),
                         ("user.username", "dev-ci@example.com"), ("objectRef.namespace", "payments")):
        assert fields[field] == value


def test_synthetic_kube_samples_equal_their_generator() -> None:
    spec = importlib.util.spec_from_file_location("make_synthetic_kube", KNOWLEDGE / "make_synthetic_kube.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (SAMPLES / "kube_synthetic_large_deployment.json").read_text(encoding="utf-8") == module.render()
    assert (SAMPLES / "kube_synthetic_truncated_pod.json").read_text(encoding="utf-8") == module.render_truncated()
    assert json.loads(module.render())["kind"] == "Event"


def test_enriched_audit_sample_keeps_its_gs_bytes() -> None:
    data = (SAMPLES / "linux_audit_lab-run1.log").read_bytes()
    records = data.split(b"\n")
    assert sum(1 for r in records if b"\x1d" in r) >= 10
    assert all(r.startswith(b"type=") for r in records if r)


def test_docs_list_every_escape_field() -> None:
    doc = (ROOT / "docs" / "sourcetypes.md").read_text(encoding="utf-8")
    stanzas, transform_stanzas = props(), transforms()
    missing = set()
    for keys in stanzas.values():
        for name in extracted_field_names(keys, transform_stanzas):
            if name.startswith("escape_") and "`{}`".format(name) not in doc:
                missing.add(name)
    assert not missing, "docs/sourcetypes.md does not document {}".format(sorted(missing))
