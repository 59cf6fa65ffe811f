"""pytest-splunk-addon 6.4.0 over the built add-on: test generation offline, the real tests when a Splunk is reachable.

pytest-splunk-addon pins pytest<8 and auto-loads into every pytest run, so it runs as a subprocess of .venv-psa
(requirements/psa.txt pins it), in a temporary working directory (it writes events.pickle, logs and tokenised
events into the current one).
"""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from tests.conftest import ROOT
from tools import conffile

PSA_PYTEST = ROOT / ".venv-psa" / "bin" / "pytest"
KNOWLEDGE = ROOT / "tests" / "knowledge"

# The fields detections and commands key on (docs/sourcetypes.md): pytest-splunk-addon must generate a field test for
# each, so the live run proves Splunk extracts it. Kubernetes JSON fields (objectRef.resource, verb, ...) come from
# KV_MODE = json, which pytest-splunk-addon 6.4.0 does not read: their escape_kube_ twins stand for them here, and the
# offline evaluator checks the JSON fields themselves (tests/unit/test_knowledge.py).
DETECTION_FIELDS: Dict[str, Tuple[str, ...]] = {
    "kube:apiserver-audit": ("escape_kube_verb", "escape_kube_stage", "escape_kube_user", "escape_kube_resource",
                             "escape_kube_subresource", "escape_kube_namespace", "escape_kube_decision",
                             "escape_kube_response_code", "escape_kube_truncated", "objectRef.resource"),
    "kubernetes": ("escape_kube_verb", "escape_kube_resource", "escape_kube_namespace", "escape_kube_decision"),
    "docker:daemon": ("escape_docker_message_type", "escape_docker_api_call", "escape_docker_api_method",
                      "escape_docker_container_name", "escape_docker_container_ref", "escape_docker_error"),
    "docker:events": ("escape_docker_event_action", "escape_docker_container_name", "escape_docker_image"),
    "docker:inspect": ("escape_docker_container_id", "escape_docker_container_name", "escape_docker_privileged",
                       "escape_docker_state"),
    "linux:audit": ("escape_audit_type", "escape_audit_serial", "escape_audit_syscall", "escape_audit_syscall_name",
                    "escape_audit_key", "escape_audit_success", "escape_audit_pid", "escape_audit_ppid",
                    "escape_audit_exe"),
    "auditd": ("escape_audit_type", "escape_audit_serial", "escape_audit_syscall", "escape_audit_syscall_name",
               "escape_audit_key", "escape_audit_success", "escape_audit_pid", "escape_audit_ppid", "escape_audit_exe"),
    "sysmon:linux": ("escape_event_code", "escape_process", "escape_process_id", "escape_parent_process",
                     "escape_parent_process_id", "escape_command_line", "escape_current_directory",
                     "escape_target_filename"),
    "XmlWinEventLog": ("escape_event_code",),
    "WinEventLog": ("escape_event_code",),
    "XmlWinEventLog:Security": ("escape_process", "escape_parent_process", "escape_command_line", "escape_user"),
    "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational": ("escape_process", "escape_parent_process",
                                                            "escape_command_line", "escape_target_filename",
                                                            "escape_user"),
    "WinEventLog:Security": ("escape_process", "escape_parent_process", "escape_command_line", "escape_user"),
    "vmw-syslog": ("escape_esxi_program", "escape_esxi_module", "escape_esxi_command", "escape_esxi_task"),
    "vmware:esxlog:vmkernel": ("escape_esxi_program", "escape_esxi_module"),
    "vmware:esxlog:vmkwarning": ("escape_esxi_program",),
    "vmware:esxlog:hostd": ("escape_esxi_program", "escape_esxi_task", "escape_esxi_user"),
    "vmware:esxlog:shell": ("escape_esxi_program", "escape_esxi_command", "escape_esxi_user"),
}


def psa_command(built_app: Path) -> List[str]:
    return [str(PSA_PYTEST), str(KNOWLEDGE), "--splunk-app={}".format(built_app),
            "--splunk-data-generator={}".format(KNOWLEDGE), "-p", "no:cacheprovider"]


@pytest.fixture(scope="module")
def collected(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    if not PSA_PYTEST.is_file():
        pytest.fail("{} is missing: run ./build.sh env".format(PSA_PYTEST.relative_to(ROOT)))
    cwd = tmp_path_factory.mktemp("psa")
    result = subprocess.run(psa_command(built_app) + ["--splunk-type=external", "--splunk-hec-token=offline",
                                                      "--collect-only", "-q"],
                            cwd=str(cwd), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"^\d+ tests collected", result.stdout, re.MULTILINE), result.stdout[-2000:]
    return [line.strip() for line in result.stdout.splitlines() if "::" in line]


def ids(collected: List[str], test: str) -> Set[str]:
    prefix = "tests/knowledge/test_addon.py::Test_App::{}[".format(test)
    return {line[len(prefix):-1] for line in collected if line.startswith(prefix)}


def test_field_tests_exist_for_every_field_the_detections_use(collected: List[str]) -> None:
    fields = ids(collected, "test_props_fields")
    missing = ["{}::field::{}".format(st, f) for st, names in DETECTION_FIELDS.items() for f in names
               if "{}::field::{}".format(st, f) not in fields]
    assert not missing, missing


def test_eventtype_and_tag_tests_cover_every_eventtype(collected: List[str]) -> None:
    eventtypes = set(conffile.parse(ROOT / "package" / "default" / "eventtypes.conf"))
    generated = ids(collected, "test_eventtype")
    assert {'eventtype::{}'.format(e) for e in eventtypes} <= generated, sorted(generated)[:5]
    tags = ids(collected, "test_tags")
    assert {'eventtype="{}"::tag::escape_to_host'.format(e) for e in eventtypes} <= tags, sorted(tags)[:5]
    # the live run deselects it (see LIVE_DESELECT); it must exist to be deselected
    assert ids(collected, "test_savedsearches"), "pytest-splunk-addon no longer generates test_savedsearches"


def test_live_deselection_drops_only_what_it_names(collected: List[str], built_app: Path, tmp_path: Path) -> None:
    """Collect again with the live run's -k expression: exactly the tests named in LIVE_DESELECT disappear."""
    result = subprocess.run(psa_command(built_app) + ["--splunk-type=external", "--splunk-hec-token=offline",
                                                      "--collect-only", "-q", "-k", LIVE_DESELECT],
                            cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    kept = {line.strip() for line in result.stdout.splitlines() if "::" in line}
    dropped = set(collected) - kept
    prefix = "tests/knowledge/test_addon.py::Test_App::"
    wanted = {line for line in collected if line.startswith(prefix + "test_savedsearches[")
              or (line.startswith(prefix + "test_cim_required_fields[") and (
                  line.endswith("::object_attrs]") or ('"escape_docker_events_container"' in line
                                                       and line.endswith(("::user]", "::src]")))))}
    assert dropped == wanted, sorted(dropped ^ wanted)


# The real run deselects, with these reasons:
# - test_savedsearches: it expects every saved search to return results, but the samples are ingested at the time of
#   the run while each detection's dispatch window lags (e.g. -70m@m to -10m@m), and the chain detections need the
#   replay's state; the replay (./build.sh replay) covers the detections instead;
# - the CIM Change fields our sources cannot fill (docs/sourcetypes.md): object_attrs (no audit or docker event names the
#   changed attributes), and user / src of docker events (dockerd does not log the API caller).
LIVE_DESELECT = ("not test_savedsearches and not (test_cim_required_fields and object_attrs) and not "
                 "(test_cim_required_fields and escape_docker_events_container and (user or src))")


@pytest.mark.needs_splunk
@pytest.mark.skipif(not os.environ.get("SPLUNK_HOST"),
                    reason="needs_splunk: pytest-splunk-addon's live tests (field extraction, eventtypes, tags, CIM on a "
                           "real Splunk) run only when SPLUNK_HOST, SPLUNK_PASSWORD and SPLUNK_HEC_TOKEN are set; "
                           "see README 'Live run against a Splunk'")
def test_pytest_splunk_addon_live(built_app: Path, tmp_path: Path) -> None:
    env = os.environ
    for name in ("SPLUNK_PASSWORD", "SPLUNK_HEC_TOKEN"):
        if not env.get(name):
            pytest.fail("SPLUNK_HOST is set but {} is not".format(name))
    command = psa_command(built_app) + [
        "--splunk-type=external", "--splunk-host={}".format(env["SPLUNK_HOST"]),
        "--splunk-port={}".format(env.get("SPLUNK_PORT", "8089")), "--splunk-user={}".format(env.get("SPLUNK_USER", "admin")),
        "--splunk-password={}".format(env["SPLUNK_PASSWORD"]), "--splunk-hec-token={}".format(env["SPLUNK_HEC_TOKEN"]),
        "--splunk-hec-port={}".format(env.get("SPLUNK_HEC_PORT", "8088")), "-k", LIVE_DESELECT, "-v"]
    result = subprocess.run(command, cwd=str(tmp_path), stdout=sys.stdout, stderr=sys.stderr, timeout=3600)
    assert result.returncode == 0, "pytest-splunk-addon failed against {} (output above)".format(env["SPLUNK_HOST"])
