"""Writes the setup page's settings manifest into the build: tunable schema, data-scope entries, detections.

The REST handler (package/bin/TA_escape_to_host_rh_settings.py) reads output/<app>/bin/escape_setup_manifest.json at
run time, so the page, the macros and the saved searches all follow content/. Called from additional_packaging.py.
"""
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"
MANIFEST_NAME = "escape_setup_manifest.json"
DETECTION_KEYS = ("slug", "title", "analytic", "type", "schedule")
DETECTION_TYPES = ("single", "chain", "threshold", "health")
_MACRO_CALL = re.compile(r"`([A-Za-z0-9_]+)(?:\([^`]*\))?`")


from escape_setup import page, tunables
from tools import content as content_model


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def data_scope_entries(content: Path = CONTENT) -> List[Dict[str, Any]]:
    """Entries of content/macros/data_scope.yml that the Data sources tab controls (a scope or field_name block)."""
    entries = _load(content / "macros" / "data_scope.yml")["macros"]
    return [e for e in entries if "scope" in e or "field_name" in e]


def detections(content: Path = CONTENT) -> List[Dict[str, Any]]:
    """Every detection in content/detections/*.yml, reduced to what the setup page needs, sorted by slug."""
    scope_names = {e["name"] for e in data_scope_entries(content) if "scope" in e}
    companions = content_model.companions(content)
    result = []
    for path in sorted((content / "detections").glob("*.yml")):
        entry = _load(path)
        missing = [k for k in DETECTION_KEYS if k not in entry]
        if missing:
            raise ValueError("{}: missing {}".format(path.name, ", ".join(missing)))
        if entry["type"] not in DETECTION_TYPES:
            raise ValueError("{}: type must be one of {}".format(path.name, ", ".join(DETECTION_TYPES)))
        schedule = entry["schedule"]
        paired = companions.get(str(entry["slug"]), [])
        # A detection that reads what a companion saved uses the data scopes of the companion's search (not those of
        # a companion that only feeds it context: the container registry's runtimes name containers, nothing more).
        searches = [str(entry.get("search", ""))] + [m.search for m in paired if not m.feeds]
        used = [m for m in dict.fromkeys(_MACRO_CALL.findall(" ".join(searches))) if m in scope_names]
        result.append({
            "slug": str(entry["slug"]), "title": str(entry["title"]), "analytic": str(entry["analytic"]),
            "type": str(entry["type"]),
            "schedule": {k: str(schedule[k]) for k in ("cron", "earliest", "latest")},
            "scopes": used,
            "companions": [m.stanza for m in paired],
        })
    return sorted(result, key=lambda d: d["slug"])


def maintenance(content: Path = CONTENT) -> List[Dict[str, Any]]:
    """The maintenance searches the setup page pairs with detections (companion_of), in the detections' form: a chain
    when they correlate over escape_time_window (the page then moves their earliest time with it)."""
    result: List[Dict[str, Any]] = []
    for search in content_model.maintenance_searches(content):
        if not search.companion_of:
            continue
        result.append({
            "slug": search.slug, "title": search.title, "analytic": str(search.analytic or ""),
            "type": "chain" if "`escape_time_window`" in search.search else "single",
            "schedule": {"cron": search.schedule.cron, "earliest": search.schedule.earliest,
                         "latest": search.schedule.latest},
            "scopes": [], "saved_search": search.stanza,
        })
    return result


def build_manifest(content: Path = CONTENT) -> Dict[str, Any]:
    manifest = {
        "generated_by": "tools/setup_manifest.py from content/. Do not edit: change content/ and rebuild.",
        "tunables": _load(content / "tunables.yml")["tunables"],
        "data_scope": data_scope_entries(content),
        "detections": detections(content),
        "maintenance": maintenance(content),
    }
    parsed = page.Manifest(manifest)  # the handler's own reader must accept it
    for detection in parsed.detections + parsed.maintenance:
        if detection.type == "chain":
            page.chain_earliest(detection, 1)  # its schedule must be one the window can be applied to
    for spec in parsed.scopes.values():
        if tunables.render_scope(spec, [], spec.sourcetypes) != spec.definition:
            raise ValueError("{}: the scope block does not rebuild the shipped definition".format(spec.macro))
    return manifest


def write_manifest(app_dir: Path, content: Path = CONTENT) -> Path:
    target = app_dir / "bin" / MANIFEST_NAME
    target.write_text(json.dumps(build_manifest(content), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    print(write_manifest(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "output" / "TA_escape_to_host"))
