"""The live podman lab: runs tests/lab/podman_lab.sh as root (rootful podman, conmon, crun) and replays its audit.log
through the Linux analytic with the checks the bundled capture passes (tests/unit/test_lab_podman.py).

It changes the host (auditd, podman state, cgroup hierarchies), so it runs only with ESCAPE_LAB=1 on a disposable
Debian 12 VM, never in ./test.sh. ESCAPE_LAB_PODMAN_CAPTURE=<dir> replays an earlier capture instead.
"""
import os
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.lab import podman_labels
from tests.unit.test_lab_podman import CHECKS, Capture

LAB = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    os.environ.get("ESCAPE_LAB") != "1" and not os.environ.get("ESCAPE_LAB_PODMAN_CAPTURE"),
    reason="the live podman lab changes the host (auditd, podman, cgroup hierarchies): set ESCAPE_LAB=1 as root on a "
           "disposable Debian 12 VM to run it (see tests/lab/README.md)")


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    given = os.environ.get("ESCAPE_LAB_PODMAN_CAPTURE")
    if given:
        folder = Path(given)
    else:
        if os.geteuid() != 0:
            pytest.skip("the lab needs root")
        folder = tmp_path_factory.mktemp("podman-lab")
        started = time.monotonic()
        proc = subprocess.run(["bash", str(LAB / "podman_lab.sh"), str(folder)], capture_output=True, text=True,
                              timeout=1800)
        print("podman lab: exit %d after %.0f s" % (proc.returncode, time.monotonic() - started))
        if proc.returncode == 77:
            pytest.skip(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "lab preconditions missing")
        assert proc.returncode == 0, proc.stderr[-3000:]
    if not (folder / "labels.tsv").is_file():
        podman_labels.write(folder)
    return Capture(folder)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_capture(capture: Capture, check: Callable[[Capture], None]) -> None:
    check(capture)


def test_podman_events_name_every_labelled_container(capture: Capture) -> None:
    assert all(label["container_id"] for label in capture.labels), "podman-events.json misses a step's container"
