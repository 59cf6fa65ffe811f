"""The evasion corpus (issue 15): every `fires` sample of every detection under every evasion transform that fits it
(tests/integration/evasion.py), replayed alone through the real commands (tools.replay), still fires that detection
at the same severity: its highest severity is the same and at least as many alerts carry it. Every `silent` sample
under the benign transforms stays silent.

The health and informational detections (container_spec_unavailable, container_allowlisted_workload) are not the
attack signal, so only the benign transforms apply to them; the allowlist evasions are cases of the detections whose
alert they would hide. Cases that fail on today's engine are marked xfail(strict=True) with the class of the gap and
what is still missing; once it is fixed the mark must go (strict: an unexpected pass fails).
"""
import gzip
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from tests.conftest import ROOT
from tests.integration import evasion
from tools import content, replay
from tools.inputs import InputSpec

DETECTIONS = {d.slug: d for d in content.detections()}
NOT_THE_ATTACK_SIGNAL = ("container_spec_unavailable", "container_allowlisted_workload")
# Cases today's engine misses, with the class of the gap (none open: the renamed runtime client of the last class is
# now known by its request and the container that followed it, tests/unit/test_runtime_clients.py).
XFAIL: Dict[Tuple[str, str, str], str] = {}


def _read(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8")


_TEXTS: Dict[str, str] = {}


def sample_text(path: str) -> str:
    if path not in _TEXTS:
        _TEXTS[path] = _read(ROOT / path)
    return _TEXTS[path]


_MUTATED: Dict[Tuple[str, str, str], Optional[str]] = {}


def mutated(path: str, sourcetype: str, name: str) -> Optional[str]:
    key = (path, sourcetype, name)
    if key not in _MUTATED:
        transform = evasion.EVASIONS.get(name) or evasion.BENIGN[name]
        _MUTATED[key] = transform(sample_text(path), sourcetype)
    return _MUTATED[key]


def _cases(kind: str) -> List[Tuple[str, Dict[str, str], str]]:
    transforms = evasion.EVASIONS if kind == "fires" else evasion.BENIGN
    cases = []
    for slug, detection in sorted(DETECTIONS.items()):
        if kind == "fires" and slug in NOT_THE_ATTACK_SIGNAL:
            continue
        for sample in detection.samples[kind]:
            for name in transforms:
                if mutated(sample["path"], sample["sourcetype"], name) is not None:
                    cases.append((slug, dict(sample), name))
    return cases


def _param(slug: str, sample: Dict[str, str], name: str) -> object:
    case_id = "{}-{}-{}".format(slug, Path(sample["path"]).name, name)
    reason = XFAIL.get((slug, Path(sample["path"]).name, name))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(slug, sample, name, id=case_id, marks=marks)


FIRES = [_param(*c) for c in _cases("fires")]
SILENT = [_param(*c) for c in _cases("silent")]
_REPLAYS: Dict[Tuple[str, str, str, str], List[Dict[str, object]]] = {}


def _replay(sample: Dict[str, str], name: str, folder: Path, built_app: Path) -> List[Dict[str, object]]:
    """Alerts of every detection over one (mutated) sample file alone; cached per file and transform."""
    key = (sample["path"], sample["sourcetype"], name, sample.get("source", "") + "|" + sample.get("host", ""))
    if key not in _REPLAYS:
        if name:
            text = mutated(sample["path"], sample["sourcetype"], name)
            assert text is not None
            path = folder / "{}-{}".format(name, Path(sample["path"]).name.replace(".gz", ""))
            path.write_text(text, encoding="utf-8")
        else:
            path = (ROOT / sample["path"]).resolve()
        spec = InputSpec(sample["sourcetype"], path, sample.get("source"), sample.get("host"))
        slugs = sorted(s for s, d in DETECTIONS.items()
                       if any(x["path"] == sample["path"] for k in ("fires", "silent") for x in d.samples[k]))
        _REPLAYS[key] = replay.replay([spec], content.CONTENT, built_app, only=slugs, require_time=False)
    return _REPLAYS[key]


def severities(alerts: List[Dict[str, object]], slug: str) -> List[str]:
    stanza = DETECTIONS[slug].stanza
    return [str(a["severity"]) for a in alerts if a["detection"] == stanza]


def top(found: List[str]) -> Tuple[int, int]:
    """(rank of the highest severity, how many alerts carry it); (-1, 0) for none."""
    if not found:
        return -1, 0
    rank = max(evasion.SEVERITIES.index(s) for s in found)
    return rank, sum(1 for s in found if evasion.SEVERITIES.index(s) == rank)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evasion")


def test_the_corpus_covers_every_analytic_and_transform() -> None:
    ids = [p.id for p in FIRES]  # type: ignore[attr-defined]
    for name in evasion.EVASIONS:
        assert any(i.endswith("-" + name) for i in ids), "no fires sample fits {}".format(name)
    for prefix in ("kube_", "docker_", "container_", "linux_", "windows_", "esxi_"):
        assert any(i.startswith(prefix) for i in ids), prefix
    assert {p.id.rsplit("-", 1)[-1] for p in SILENT} == set(evasion.BENIGN)  # type: ignore[attr-defined]


@pytest.mark.parametrize("slug, sample, name", FIRES)
def test_an_evasion_keeps_the_alert_and_its_severity(slug: str, sample: Dict[str, str], name: str, folder: Path,
                                                    built_app: Path) -> None:
    before = severities(_replay(sample, "", folder, built_app), slug)
    assert before, "{} does not fire on {} alone".format(slug, sample["path"])
    after = severities(_replay(sample, name, folder, built_app), slug)
    (rank, count), (rank_after, count_after) = top(before), top(after)
    assert rank_after == rank and count_after >= count, "{} on {} under {}: before {} {}x, after {}".format(
        slug, Path(sample["path"]).name, name, evasion.SEVERITIES[rank], count, json.dumps(after))


@pytest.mark.parametrize("slug, sample, name", SILENT)
def test_a_benign_transform_keeps_a_silent_sample_silent(slug: str, sample: Dict[str, str], name: str, folder: Path,
                                                        built_app: Path) -> None:
    assert severities(_replay(sample, name, folder, built_app), slug) == []
