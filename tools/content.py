"""Reads content/ (detections and macros as data) through the typed model (tools/model.py) and renders the conf
files it owns into the build output with the templates in tools/templates/ (they hold the stanza layout).

content/detections/<slug>.yml (docs/development.md §1) becomes one stanza of savedsearches.conf and one
escape_<slug>_filter macro; content/tunables.yml and content/macros/*.yml become the other macros.conf stanzas.
Every function takes the content folder as a parameter so tests can render fixture content. The release checks
(content/released.yml, content/deprecations.yml) are tools/release.py.
"""
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import jinja2
import yaml

from escape_engine.ground import SEVERITY_RANK
from escape_setup import tunables
from tools import conffile, es
from tools.model import ANALYTICS as ANALYTICS  # re-exported: the replay and the tests read them here
from tools.model import Detection as Detection
from tools.model import DetectionError as DetectionError
from tools.model import MaintenanceSearch as MaintenanceSearch  # re-exported: the replay and the bench read it here
from tools.model import check_unique, validate_maintenance
from tools.model import validate_detection as validate_detection
from tools.spl import split_pipes

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def tunable_schema(content_dir: Path = CONTENT) -> Dict[str, Any]:
    schema: Dict[str, Any] = load_yaml(content_dir / "tunables.yml")
    return schema


def tunable_specs(content_dir: Path = CONTENT) -> Dict[str, tunables.TunableSpec]:
    return tunables.load_specs(tunable_schema(content_dir))


def data_scope_names(content_dir: Path = CONTENT) -> List[str]:
    """Macros of content/macros/data_scope.yml: where each source's events live (search-term expressions)."""
    path = content_dir / "macros" / "data_scope.yml"
    return [str(e["name"]) for e in load_yaml(path)["macros"]] if path.is_file() else []


def macros(content_dir: Path = CONTENT) -> List[Dict[str, Any]]:
    """Every macro the add-on ships, in file order: tunables (rendered defaults), content/macros/*.yml, then one
    escape_<slug>_filter hook per detection. A macro with arguments carries `args` (its stanza is `name(N)`)."""
    result: List[Dict[str, Any]] = []
    schema = tunable_schema(content_dir)
    specs = tunables.load_specs(schema)
    for entry in schema["tunables"]:
        spec = specs[entry["macro"]]
        result.append({
            "name": spec.macro,
            "definition": tunables.render(spec, spec.default),
            "description": "{} Set it on the add-on's Configuration page (Tunables). {}".format(
                " ".join(str(entry["attack"]).split()), " ".join(str(entry["help"]).split())),
        })
    for path in sorted((content_dir / "macros").glob("*.yml")):
        for entry in load_yaml(path)["macros"]:
            macro = {"name": entry["name"], "definition": entry["definition"], "description": entry["description"]}
            if entry.get("args"):
                macro["args"] = [str(a) for a in entry["args"]]
            result.append(macro)
    for detection in detections(content_dir):
        result.append({
            "name": detection.filter_macro,
            "definition": "search *",
            "description": "Empty hook, evaluated last in '{}'. Override it in local/macros.conf to drop known-good "
                           "activity, e.g. search NOT host=\"build-*\"".format(detection.stanza),
        })
    names = [stanza_name(m) for m in result]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError("macros defined twice in content/: {}".format(", ".join(duplicates)))
    return result


def stanza_name(macro: Dict[str, Any]) -> str:
    args = macro.get("args") or []
    return "{}({})".format(macro["name"], len(args)) if args else str(macro["name"])


# ---------------------------------------------------------------- detections (docs/development.md §1)
def detections(content_dir: Path = CONTENT) -> List[Detection]:
    """Every content/detections/*.yml, validated, in file-name order; slugs, ids and stanza names unique."""
    result = [validate_detection(load_yaml(p), p) for p in sorted((content_dir / "detections").glob("*.yml"))]
    check_unique(result)
    return result


def search_lines(search: str) -> str:
    """One pipe per line (top-level pipes only), as docs/development.md asks for conf files."""
    pipes = [re.sub(r"\s*\n\s*", " ", pipe) for pipe in split_pipes(search.strip())]
    return "\n| ".join(pipes)


def alert_severity(severity: str) -> int:
    """savedsearches.conf alert.severity: Splunk numbers 1 debug, 2 info, 3 warn, 4 error, 5 severe, 6 fatal, so our
    lowest severity (informational) is 2 and each step up adds one."""
    return SEVERITY_RANK[severity] + 2


def detection_view(detection: Detection) -> Dict[str, Any]:
    """The values tools/templates/savedsearch_detection.j2 lays out (docs/development.md §1)."""
    description = "{} How to tune: {} Known false positives: {}".format(
        detection.text("description"), detection.text("how_to_tune"), detection.text("known_false_positives"))
    return {
        "stanza": detection.stanza,
        "description": ("Experimental. " if detection.status == "experimental" else "") + description,
        "search": search_lines(detection.search),
        "schedule": detection.schedule,
        "suppress": detection.suppress,
        "alert_severity": alert_severity(detection.severity),
        "mitre_attack": detection.mitre_attack,
        "es": es.keys(title=detection.title, analytic=detection.analytic, severity=detection.severity,
                      description=detection.text("description"),
                      # a reader's notable drills down into the events its producer searched (the same scopes)
                      search=producer_search(detection, detection.path.parent.parent) or detection.search,
                      scopes=data_scope_names(detection.path.parent.parent),
                      block=detection.es or {}),
    }


def maintenance_searches(content_dir: Path = CONTENT) -> List[MaintenanceSearch]:
    """content/baselines/*.yml: scheduled searches that keep state a detection reads (never alert)."""
    return [validate_maintenance(load_yaml(p), p) for p in sorted((content_dir / "baselines").glob("*.yml"))]


def maintenance_view(maintenance: MaintenanceSearch) -> Dict[str, Any]:
    """The values tools/templates/savedsearch_maintenance.j2 lays out. A companion of detections ships disabled, as
    they do (the setup page enables it with them); one without is enabled on install: it only records state (no
    alert), and a detection that reads the state is only as good as the history it has gathered by then."""
    return {
        "stanza": maintenance.stanza,
        "description": "Maintenance search (never alerts). " + " ".join(maintenance.description.split()),
        "search": search_lines(maintenance.search),
        "schedule": maintenance.schedule,
        "disabled": 1 if maintenance.companion_of else 0,
        "scheduled": 0 if maintenance.run == "once" else 1,
    }


def companions(content_dir: Path = CONTENT) -> Dict[str, List[MaintenanceSearch]]:
    """Detection slug -> the maintenance searches that keep what it reads (companion_of): the one pairing that the
    setup page (enabled while any of their detections is), the replay and the lint read."""
    slugs = {str(load_yaml(p).get("slug")) for p in (content_dir / "detections").glob("*.yml")}
    pairs: Dict[str, List[MaintenanceSearch]] = {}
    # a search that feeds another comes first: the replay runs each detection's companions in this order (a feeds
    # naming no maintenance search is tools/contentlint.py's to report)
    for maintenance in sorted(maintenance_searches(content_dir), key=lambda m: 0 if m.feeds else 1):
        for slug in maintenance.companion_of or []:
            if slug not in slugs:
                raise DetectionError("{}: companion_of {!r} is no detection".format(maintenance.path.name, slug))
            pairs.setdefault(slug, []).append(maintenance)
    return pairs


def searched_spl(detection: Detection, content_dir: Path = CONTENT) -> str:
    """The SPL a detection's alerts rest on: its own search, and its producer's when it reads saved results (the
    macros, data scopes and tunables of both are its own)."""
    return detection.search + "\n" + producer_search(detection, content_dir)


def producer_search(detection: Detection, content_dir: Path = CONTENT) -> str:
    """The search of the one companion that saves what a detection reads (reads_saved_results), else "" (a companion
    that feeds another maintenance search is not it)."""
    found = [m for m in (companions(content_dir).get(detection.slug, []) if detection.reads_saved_results else [])
             if not m.feeds]
    return found[0].search if len(found) == 1 else ""


def maintenance_stanza(maintenance: MaintenanceSearch) -> str:
    return maintenance.stanza


def saved_search(detection: Detection) -> Dict[str, str]:
    """The savedsearches.conf keys of one detection, in file order, read back from its rendered stanza (the
    template is their one owner)."""
    return _stanza_keys(_environment().get_template("savedsearch_detection.j2").render(s=detection_view(detection)))


def maintenance_search(maintenance: MaintenanceSearch) -> Dict[str, str]:
    """The savedsearches.conf keys of one maintenance search, read back from its rendered stanza."""
    return _stanza_keys(_environment().get_template("savedsearch_maintenance.j2").render(
        s=maintenance_view(maintenance)))


def _stanza_keys(text: str) -> Dict[str, str]:
    """key -> value of one rendered stanza, each continued value back on its own lines (as it was rendered from)."""
    stanzas = conffile.parse_text(text)
    (name,) = [n for n in stanzas if n != "default"]
    return {k: v.replace(" \n", "\n") for k, v in stanzas[name].items()}


def render_savedsearches_conf(content_dir: Path = CONTENT) -> str:
    return _environment().get_template("savedsearches.conf.j2").render(
        detections=[detection_view(d) for d in detections(content_dir)],
        maintenance=[maintenance_view(m) for m in maintenance_searches(content_dir)])


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["conf_value"] = _conf_value
    return env


def _conf_value(text: str) -> str:
    """A conf value on several lines continues each line with a trailing backslash."""
    return " \\\n".join(line.rstrip() for line in text.strip().splitlines())


def render_macros_conf(content_dir: Path = CONTENT) -> str:
    return _environment().get_template("macros.conf.j2").render(macros=macros(content_dir))


def write_generated(app_dir: Path, content_dir: Optional[Path] = None) -> List[Path]:
    """Write every content-owned conf into a built app folder (output/TA_escape_to_host)."""
    content_dir = content_dir or CONTENT
    default = app_dir / "default"
    default.mkdir(parents=True, exist_ok=True)
    written = []
    target = default / "macros.conf"
    target.write_text(render_macros_conf(content_dir), encoding="utf-8")
    written.append(target)
    target = default / "savedsearches.conf"
    if detections(content_dir):
        target.write_text(render_savedsearches_conf(content_dir), encoding="utf-8")
        written.append(target)
    elif target.exists():
        target.unlink()
    return written


if __name__ == "__main__":
    app = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "output" / "TA_escape_to_host"
    for path in write_generated(app):
        print("rendered", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
