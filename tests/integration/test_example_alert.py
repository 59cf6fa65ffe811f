"""docs/example-alert.md is what a fresh replay of its bundled sample gives with the built saved search's notable and
risk parameters (tools/example_alert.py); regenerate it with `./build.sh docs`."""
from pathlib import Path

from tools import example_alert


def test_the_example_alert_doc_is_a_fresh_replay(built_app: Path) -> None:
    text = example_alert.build(built_app)
    assert example_alert.DOC.read_text(encoding="utf-8") == text, "run ./build.sh docs"
    assert "| `escape_summary` | Create of ReplicaSet/default/nginx-deployment-5cdcc99dbf: container nginx is " \
           "privileged" in text
    assert "| Title | Pod or Workload Spec Breaks Host Isolation on kube-apiserver-1 |" in text
