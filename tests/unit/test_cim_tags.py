"""An event that gets a CIM tag also gets that data model's fields: every sample whose eventtypes carry the `change`
tag (tags.conf) has the CIM Change fields the owned stanzas set. _json events with source=kubernetes (borrowed:
Splunk's _json, no EVAL allowed) must therefore stay out of the Change data model."""
from typing import Dict, Set

from tests.unit.test_knowledge import APP, expected, psa_samples, sample_events
from tools import conffile
from tools.searchtime import SearchTimeKnowledge

CHANGE_FIELDS = ("action", "change_type", "object_category", "status", "dest", "dvc", "vendor_product")


def tagged(tag: str) -> Set[str]:
    tags: Dict[str, Dict[str, str]] = conffile.parse(APP / "default" / "tags.conf")
    return {name.split("=", 1)[1] for name, keys in tags.items()
            if name.startswith("eventtype=") and keys.get(tag) == "enabled"}


def test_every_event_in_the_change_data_model_has_the_change_fields() -> None:
    knowledge = SearchTimeKnowledge.from_app(APP)
    change = tagged("change")
    checked = 0
    for name, meta in psa_samples().items():
        if name not in expected():
            continue
        for raw in sample_events(name, meta):
            fields = knowledge.fields({"_raw": raw, "sourcetype": meta["sourcetype"], "source": meta["source"],
                                       "host": "labhost"})
            if not change & set(knowledge.eventtypes(fields)):
                continue
            checked += 1
            missing = [f for f in CHANGE_FIELDS if not fields.get(f)]
            assert not missing, "{} ({}, source {}): tagged change without {}".format(
                name, meta["sourcetype"], meta["source"], missing)
    assert checked >= 5
