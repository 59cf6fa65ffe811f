"""The podman lab capture (tests/data/lab-podman, rootful podman + conmon + crun) replayed through the Linux analytic:
every labelled step alerts as labelled and names its container by the full id podman gave it, and no chain spans
two containers, also when a dozen short-lived containers reuse one anonymous device and conmon daemonizes."""
import csv
import gzip
import re
from functools import cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from escape_engine.correlate import Correlator
from escape_engine.ground import CONTAINER_ID_FIELD, CONTAINER_IDENTITIES, IDENTITY_FIELD
from tests.conftest import DATA
from tests.unit.linux_lab import stamp_serial, to_records

LAB = DATA / "lab-podman"
HOST = "podmanlab"
Window = Tuple[float, float, str]


class Capture:
    """One podman lab capture folder (the bundled one, or a fresh run of tests/lab/podman_lab.sh)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        log = folder / "audit.log.gz"
        raw = gzip.decompress(log.read_bytes()) if log.is_file() else (folder / "audit.log").read_bytes()
        self.lines = tuple(raw.split(b"\n"))  # bytes, split on \n only
        with (folder / "labels.tsv").open(encoding="utf-8", newline="") as handle:
            self.labels = tuple(csv.DictReader(handle, delimiter="\t"))
        begins: Dict[str, Tuple[float, str]] = {}
        self.windows: Dict[str, Window] = {}
        for row in (folder / "timeline.tsv").read_text(encoding="utf-8").splitlines():
            when, kind, step, label, _ = row.split("\t", 4)
            if kind == "BEGIN":
                begins[step] = (float(when), label)
            else:
                self.windows[step] = (begins[step][0], float(when), begins[step][1])
        self.rows = tuple(replay(self.lines)[0])

    def steps_of(self, row: Dict, kept: Optional[Tuple[bytes, ...]] = None) -> List[str]:
        """The steps whose window holds evidence of the alert."""
        kept = kept or self.lines
        times = {float(stamp_serial(kept[int(cd.split(":")[1])])[0]) for cd in row["escape_evidence_cd"]}
        return sorted({step for step, (begin, end, _) in self.windows.items()
                       if any(begin <= t <= end for t in times)})

    def rows_in(self, step: str, rows: Optional[Tuple[Dict, ...]] = None,
                kept: Optional[Tuple[bytes, ...]] = None) -> List[Dict]:
        return [row for row in (self.rows if rows is None else rows) if step in self.steps_of(row, kept)]

    def short_lived(self) -> List[Dict[str, str]]:
        return [label for label in self.labels if re.fullmatch(r"S\d\d", label["step"])]


def replay(kept: Tuple[bytes, ...]) -> Tuple[List[Dict], Correlator]:
    correlator = Correlator(report="all")
    records = to_records(list(enumerate(kept)), host=HOST)
    for start in range(0, len(records), 1000):
        correlator.feed(records[start:start + 1000])
    rows = correlator.finish()
    assert correlator.summary["malformed"] == 0 and correlator.summary["out_of_order"] == 0
    return rows, correlator


@cache
def bundled() -> Capture:
    return Capture(LAB)


# ---- what every capture of the podman lab must show (tests/lab/test_podman_lab.py runs these on a fresh run) --------
def check_each_short_lived_container_has_its_own_alert_named_by_its_full_id(capture: Capture) -> None:
    for label in capture.short_lived():
        found = capture.rows_in(label["step"])
        assert len(found) == 1, (label["step"], [r["escape_container"] for r in found])
        row = found[0]
        assert row[CONTAINER_ID_FIELD] == label["container_id"] and row["escape_container"] == label["container_id"]
        assert row[IDENTITY_FIELD] == "exact" and row["escape_category"] == "suspicious"


def check_no_chain_spans_two_containers(capture: Capture) -> None:
    for row in capture.rows:
        assert len(capture.steps_of(row)) == 1, (row["escape_container"], capture.steps_of(row))


def check_every_labelled_step_alerts_as_labelled_and_names_its_container(capture: Capture) -> None:
    for label in capture.labels:
        found = capture.rows_in(label["step"])
        if label["expected_alert"] == "none":
            assert not found, label["step"]
            continue
        categories = {row["escape_category"] for row in found}
        wanted = {"escape"} if label["expected_alert"] == "escape" else {"escape", "suspicious"}
        assert categories and categories <= wanted, (label["step"], categories)
        assert {row[CONTAINER_ID_FIELD] for row in found} == {label["container_id"]}, label["step"]
        assert {row[IDENTITY_FIELD] for row in found} == {"exact"}, label["step"]


CHECKS = (check_each_short_lived_container_has_its_own_alert_named_by_its_full_id, check_no_chain_spans_two_containers,
          check_every_labelled_step_alerts_as_labelled_and_names_its_container)


def test_the_labels_name_a_dozen_distinct_short_lived_containers() -> None:
    dozen = bundled().short_lived()
    assert len(dozen) == 12 and len({label["container_id"] for label in dozen}) == 12
    assert all(re.fullmatch(r"[0-9a-f]{64}", label["container_id"]) for label in bundled().labels)


def test_the_dozen_containers_ran_from_one_reused_anonymous_device() -> None:
    # The premise of the identity tests: the kernel handed each new container the device number the previous one
    # had, so the executable's device alone cannot tell them apart.
    _, correlator = replay(bundled().lines)
    devices = {proc.dev for images in correlator.hosts[HOST].procs.values() for proc in images
               if proc.comm == "unshare" and proc.container}
    assert len(devices) == 1 and next(iter(devices)).startswith("00:")


def test_each_short_lived_container_has_its_own_alert_named_by_its_full_id() -> None:
    check_each_short_lived_container_has_its_own_alert_named_by_its_full_id(bundled())


def test_no_chain_spans_two_containers() -> None:
    check_no_chain_spans_two_containers(bundled())


def test_every_labelled_step_alerts_as_labelled_and_names_its_container() -> None:
    check_every_labelled_step_alerts_as_labelled_and_names_its_container(bundled())


def test_podman_exec_into_a_running_container_is_that_container() -> None:
    # E04: `podman exec` runs `crun exec --detach` under a second daemonized conmon: the exec'd nsenter is the first
    # exec under that unseen monitor after the call, and belongs to the container the call names.
    row = next(r for r in bundled().rows if "E04" in bundled().steps_of(r))
    assert row["escape_finding"] == "nsenter_host_exec" and "crun exec" in row["escape_attribution"]


def _without_runtime_calls(steps: List[str]) -> Tuple[bytes, ...]:
    """The capture without the events of crun (its calls, its re-exec and its clone) inside the given steps, as when
    the audit backlog lost them or they fell outside the search: only weak signs remain for those containers."""
    capture = bundled()
    spans = [capture.windows[step][:2] for step in steps]
    dropped = set()
    for line in capture.lines:
        if line.startswith(b"type=SYSCALL") and (b' exe="/usr/bin/crun"' in line or b' exe="/"' in line):
            key = stamp_serial(line)
            if key and any(begin <= float(key[0]) <= end for begin, end in spans):
                dropped.add(key)
    return tuple(b"" if stamp_serial(line) in dropped else line for line in capture.lines)


def test_without_any_runtime_call_the_reused_device_gives_separate_uncertain_chains() -> None:
    dozen = [label["step"] for label in bundled().short_lived()]
    kept = _without_runtime_calls(dozen)
    rows, _ = replay(kept)
    alerts = {step: bundled().rows_in(step, tuple(rows), kept) for step in dozen}
    assert all(len(found) == 1 for found in alerts.values()), {s: len(f) for s, f in alerts.items()}
    assert len({found[0]["escape_container"] for found in alerts.values()}) == 12
    assert {found[0][IDENTITY_FIELD] for found in alerts.values()} == {"uncertain"}
    assert all(len(bundled().steps_of(row, kept)) == 1 for row in rows)


def test_a_container_start_not_seen_exactly_ends_the_last_containers_claim_on_the_device() -> None:
    # S01 is known exactly and claims the device; the runtime calls of S02-S12 are gone, but each of their first
    # processes still carries crun's stale title: a new container started there, so none of them is S01's.
    later = [label["step"] for label in bundled().short_lived()][1:]
    kept = _without_runtime_calls(later)
    rows = tuple(replay(kept)[0])
    first = bundled().short_lived()[0]
    assert {row[CONTAINER_ID_FIELD] for row in bundled().rows_in("S01", rows, kept)} == {first["container_id"]}
    for step in later:
        found = bundled().rows_in(step, rows, kept)
        assert len(found) == 1 and found[0][IDENTITY_FIELD] == CONTAINER_IDENTITIES[-1], step
        assert found[0][CONTAINER_ID_FIELD] != first["container_id"], step
