"""Dev tool (run by hand, never by the build): rewrites the setup page's Data sources and Analytics tabs in
globalConfig.json from content/ (macros/data_scope.yml and detections/*.yml).

    ./build.sh setup-page           # rewrite globalConfig.json and the generated head of
                                    # package/bin/TA_escape_to_host_rh_settings.py; then ./build.sh
    ./build.sh setup-page --check   # exit 1 when globalConfig.json disagrees with content/

tests/unit/test_setup_page.py fails while they disagree. The Tunables tab is checked against content/tunables.yml
by tests/unit/test_content.py.
"""
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
GLOBAL_CONFIG = ROOT / "globalConfig.json"

from escape_engine.ground import saved_search_name
from tools.setup_manifest import CONTENT, data_scope_entries, detections

INDEX_LIST_PATTERN = r"^\s*([a-z0-9][a-z0-9_-]*\s*(,\s*[a-z0-9][a-z0-9_-]*\s*)*)?$"
SOURCETYPE_LIST_PATTERN = r"^\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*(,\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*)*$"
FIELD_NAME_PATTERN = r"^\s*[A-Za-z_][A-Za-z0-9_.]*\s*$"
SCOPE_STATUS_HELP = (
    "Read-only, filled in each time this page loads: a warning for every data scope that an enabled analytic uses "
    "while it names no index or found no events in the last 24 hours. Edits to this box are ignored.")


def data_sources_tab(content: Path = CONTENT) -> Dict[str, Any]:
    entity: List[Dict[str, Any]] = []
    for entry in data_scope_entries(content):
        source = entry["name"][len("escape_"):]
        if "scope" in entry:
            label = entry["scope"]["label"]
            entity.append({
                "type": "text", "label": "{} indexes".format(label), "field": source + "_indexes",
                "help": "Comma-separated indexes that hold these events (macro {}). Empty: the macro names no index, "
                        "so searches read the searching role's default indexes, and this page warns."
                        .format(entry["name"]),
                "required": False,
                "validators": [
                    {"type": "string", "minLength": 0, "maxLength": 4096,
                     "errorMsg": "{} indexes: at most 4096 characters.".format(label)},
                    {"type": "regex", "pattern": INDEX_LIST_PATTERN,
                     "errorMsg": "{} indexes: index names of lowercase letters, digits, _ and - (not starting with _ "
                                 "or -), separated by commas.".format(label)},
                ],
            })
            entity.append({
                "type": "text", "label": "{} sourcetypes".format(label), "field": source + "_sourcetypes",
                "help": "Comma-separated sourcetypes (* is a wildcard) of these events (macro {})."
                        .format(entry["name"])
                        + (" Source constraints kept as shipped: {}.".format(", ".join(entry["scope"]["sources"]))
                           if entry["scope"]["sources"] else ""),
                "required": True,
                "defaultValue": ",".join(entry["scope"]["sourcetypes"]),
                "validators": [
                    {"type": "string", "minLength": 1, "maxLength": 4096,
                     "errorMsg": "{} sourcetypes: 1 to 4096 characters.".format(label)},
                    {"type": "regex", "pattern": SOURCETYPE_LIST_PATTERN,
                     "errorMsg": "{} sourcetypes: sourcetype names of letters, digits and _ . : / - * separated by "
                                 "commas.".format(label)},
                ],
            })
        else:
            label = entry["field_name"]["label"]
            entity.append({
                "type": "text", "label": label, "field": source + "_field",
                "help": "{} (macro {}): one field name.".format(entry["description"], entry["name"]),
                "required": True,
                "defaultValue": entry["definition"],
                "validators": [
                    {"type": "string", "minLength": 1, "maxLength": 128,
                     "errorMsg": "{}: 1 to 128 characters.".format(label)},
                    {"type": "regex", "pattern": FIELD_NAME_PATTERN,
                     "errorMsg": "{}: one field name of letters, digits, _ and . that starts with a letter or _."
                                 .format(label)},
                ],
            })
    entity.append({"type": "textarea", "label": "Data scope status", "field": "scope_status",
                   "help": SCOPE_STATUS_HELP, "required": False})
    return {"name": "data_sources", "title": "Data sources", "entity": entity}


def analytics_tab(content: Path = CONTENT) -> Dict[str, Any]:
    entity: List[Dict[str, Any]] = []
    for detection in detections(content):
        entity.append({
            "type": "checkbox", "label": detection["title"], "field": detection["slug"],
            "help": "Scheduled search \"{}\" ({} analytic, {} detection). Alert actions are set in Splunk's own alert "
                    "settings.".format(saved_search_name(detection["title"]), detection["analytic"], detection["type"]),
            "required": False, "defaultValue": False,
        })
    if not entity:
        entity.append({"type": "helpLink", "field": "no_detections", "label": "Detections",
                       "options": {"text": "No detection is installed in this version."}})
    return {"name": "analytics", "title": "Analytics", "entity": entity}


def expected(config: Dict[str, Any], content: Path = CONTENT) -> Dict[str, Any]:
    """globalConfig with the two generated tabs in place (after Tunables, before Logging)."""
    tabs = [t for t in config["pages"]["configuration"]["tabs"] if t.get("name") not in ("data_sources", "analytics")]
    at = next(i for i, t in enumerate(tabs) if t.get("name") == "tunables") + 1
    tabs[at:at] = [data_sources_tab(content), analytics_tab(content)]
    result: Dict[str, Any] = json.loads(json.dumps(config))  # a deep copy
    result["pages"]["configuration"]["tabs"] = tabs
    return result


def render(config: Dict[str, Any]) -> str:
    """The text ucc-gen writes (json.dump, ensure_ascii=False, indent=4, trailing newline)."""
    return json.dumps(config, ensure_ascii=False, indent=4) + "\n"


HANDLER = ROOT / "package" / "bin" / "TA_escape_to_host_rh_settings.py"
MARKER = "# " + "-" * 117 + "\n# Everything above is the file ucc-gen generates"


def generated_handler(config: Dict[str, Any], workdir: Path) -> str:
    """The settings handler ucc-gen 6.6.0 generates for `config` (its own generator, as `ucc-gen build` calls it)."""
    from splunk_add_on_ucc_framework.commands.rest_builder.global_config_builder_schema import GlobalConfigBuilderSchema
    from splunk_add_on_ucc_framework.global_config import GlobalConfig
    path = workdir / "globalConfig.json"
    path.write_text(json.dumps(config, indent=4), encoding="utf-8")
    global_config = GlobalConfig.from_file(str(path))
    global_config.expand()
    for endpoint in GlobalConfigBuilderSchema(global_config).endpoints:
        if endpoint.rh_name + ".py" == HANDLER.name:
            return str(endpoint.generate_rh())
    raise ValueError("ucc-gen generated no " + HANDLER.name)


def handler_text(config: Dict[str, Any], workdir: Path) -> str:
    """The overridden handler: ucc-gen's generated models, verbatim, then our hand-written tail."""
    generated = generated_handler(config, workdir)
    ours = HANDLER.read_text(encoding="utf-8")
    return generated[:generated.index("if __name__ == '__main__':")] + ours[ours.index(MARKER):]


def main(argv: List[str]) -> int:
    current = GLOBAL_CONFIG.read_text(encoding="utf-8")
    wanted = render(expected(json.loads(current)))
    if "--check" in argv:
        if wanted != current:
            print("globalConfig.json disagrees with content/: run ./build.sh setup-page",
                  file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        GLOBAL_CONFIG.write_text(wanted, encoding="utf-8")
        print("rewrote globalConfig.json (Data sources and Analytics tabs); rebuild and commit it")
    with tempfile.TemporaryDirectory() as tmp:
        text = handler_text(json.loads(wanted), Path(tmp))
    if text != HANDLER.read_text(encoding="utf-8"):
        HANDLER.write_text(text, encoding="utf-8")
        print("rewrote the generated part of", HANDLER.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
