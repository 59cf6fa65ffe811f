"""Upgrade safety: names once released (content/released.yml) never vanish without an entry in
content/deprecations.yml, because admins' local/ overrides and alert actions refer to them by name.

    ./build.sh record-release <version>  when a release is cut: add the current names
"""
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

from tools.content import CONTENT, detections, load_yaml, macros, stanza_name

KINDS = ("macro", "saved_search")


def released(content_dir: Path = CONTENT) -> Dict[str, Any]:
    data: Dict[str, Any] = load_yaml(content_dir / "released.yml") or {}
    return data


def deprecations(content_dir: Path = CONTENT) -> List[Dict[str, Any]]:
    path = content_dir / "deprecations.yml"
    entries: List[Dict[str, Any]] = (load_yaml(path) or {}).get("deprecations") or [] if path.is_file() else []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kind") not in KINDS or not entry.get("name") \
                or "replaced_by" not in entry or not entry.get("since") or not entry.get("reason"):
            raise ValueError("deprecations.yml: each entry needs name, kind (macro | saved_search), replaced_by, "
                             "since and reason: {!r}".format(entry))
    return entries


def current_names(content_dir: Path = CONTENT) -> Dict[str, List[str]]:
    return {"saved_searches": [d.stanza for d in detections(content_dir)],
            "macros": [stanza_name(m) for m in macros(content_dir)]}


def upgrade_problems(content_dir: Path = CONTENT) -> List[str]:
    """Released names that disappeared without a deprecation entry (and deprecations that point nowhere)."""
    names = current_names(content_dir)
    deprecated = {(e["kind"], e["name"]): e for e in deprecations(content_dir)}
    problems = []
    for kind, key in (("saved_search", "saved_searches"), ("macro", "macros")):
        for name in released(content_dir).get(key) or []:
            entry = deprecated.get((kind, name))
            if name not in names[key] and entry is None:
                problems.append("released {} {!r} disappeared without an entry in content/deprecations.yml".format(
                    kind.replace("_", " "), name))
            if entry is not None and entry["replaced_by"] and entry["replaced_by"] not in names[key]:
                problems.append("deprecated {} {!r} is replaced by {!r}, which does not exist".format(
                    kind.replace("_", " "), name, entry["replaced_by"]))
    return problems


def record_release(version: str, content_dir: Path = CONTENT) -> None:
    """Add the current names to content/released.yml (names once released stay listed)."""
    data = released(content_dir)
    names = current_names(content_dir)
    for key in ("saved_searches", "macros"):
        data[key] = list(dict.fromkeys(list(data.get(key) or []) + names[key]))
    data["version"] = version
    text = (content_dir / "released.yml").read_text(encoding="utf-8")
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    (content_dir / "released.yml").write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--record-release"] or len(sys.argv) != 3:
        print("usage: python -m tools.release --record-release <version>", file=sys.stderr)
        sys.exit(2)
    record_release(sys.argv[2])
