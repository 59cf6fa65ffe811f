"""Writes two SYNTHETIC audit.k8s.io/v1 Events into samples/ (no cluster produced them).

kube_synthetic_large_deployment.json: one event over 20 KB.

A Deployment create at level Request whose pod template has many containers; the last one is privileged and mounts
the host's `/`. As in every real audit event, `annotations` (with `authorization.k8s.io/decision`) come after the
request body, so they lie beyond the 5,000 bytes Splunk's automatic JSON extraction reads.
kube_synthetic_truncated_pod.json: a pod create as kube-apiserver's truncating backend leaves it (bodies removed,
`audit.k8s.io/truncated` set). tests/unit/test_knowledge.py checks both files still equal this script's output.
Run: python tests/knowledge/make_synthetic_kube.py
"""
import json
from pathlib import Path
from typing import Any, Dict, List

SAMPLES = Path(__file__).resolve().parent / "samples"
OUT = SAMPLES / "kube_synthetic_large_deployment.json"
OUT_TRUNCATED = SAMPLES / "kube_synthetic_truncated_pod.json"


def container(index: int) -> Dict[str, Any]:
    return {
        "name": "worker-{:02d}".format(index),
        "image": "registry.example.com/team/worker:1.{}.0".format(index),
        "args": ["--queue", "jobs-{:02d}".format(index), "--concurrency", "4"],
        "env": [{"name": "SETTING_{:02d}_{:02d}".format(index, n), "value": "value-{:02d}-{:02d}-".format(index, n) + "x" * 24}
                for n in range(18)],
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }


def event() -> Dict[str, Any]:
    containers: List[Dict[str, Any]] = [container(i) for i in range(12)]
    containers.append({
        "name": "node-agent",
        "image": "registry.example.com/ops/node-agent:2.3.1",
        "command": ["/bin/sh", "-c", "chroot /host /bin/sh -c 'id; hostname'"],
        "securityContext": {"privileged": True},
        "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
    })
    body = {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "batch-workers", "namespace": "payments", "labels": {"app": "batch-workers"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "batch-workers"}},
            "template": {
                "metadata": {"labels": {"app": "batch-workers"}},
                "spec": {
                    "serviceAccountName": "batch",
                    "containers": containers,
                    "volumes": [{"name": "scratch", "emptyDir": {}},
                                {"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}}],
                },
            },
        },
    }
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
        "auditID": "5f0c3a52-7d1e-4c39-9a55-2b8f0e6d1c47", "stage": "ResponseComplete",
        "requestURI": "/apis/apps/v1/namespaces/payments/deployments?fieldManager=kubectl-client-side-apply",
        "verb": "create",
        "user": {"username": "dev-ci@example.com", "groups": ["system:authenticated", "ci-deployers"]},
        "sourceIPs": ["10.20.30.40"], "userAgent": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
        "objectRef": {"resource": "deployments", "namespace": "payments", "name": "batch-workers",
                      "apiGroup": "apps", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": body,
        "requestReceivedTimestamp": "2026-11-29T03:50:12.104211Z",
        "stageTimestamp": "2026-11-29T03:50:12.131876Z",
        "annotations": {"authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding \"ci-deployers/payments\" of "
                                                       "ClusterRole \"edit\" to Group \"ci-deployers\"",
                        "pod-security.kubernetes.io/enforce-policy": "privileged:latest"},
    }


def truncated_event() -> Dict[str, Any]:
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "0b6f1e9a-3c4d-4e5f-8a7b-9c0d1e2f3a4b", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/payments/pods", "verb": "create",
        "user": {"username": "dev-ci@example.com", "groups": ["system:authenticated", "ci-deployers"]},
        "sourceIPs": ["10.20.30.40"], "userAgent": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
        "objectRef": {"resource": "pods", "namespace": "payments", "name": "debug-shell", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": "2026-11-29T03:51:02.200114Z",
        "stageTimestamp": "2026-11-29T03:51:02.241907Z",
        "annotations": {"audit.k8s.io/truncated": "true", "authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding \"ci-deployers/payments\" of "
                                                       "ClusterRole \"edit\" to Group \"ci-deployers\""},
    }


def render() -> str:
    return json.dumps(event(), separators=(",", ":")) + "\n"


def render_truncated() -> str:
    return json.dumps(truncated_event(), separators=(",", ":")) + "\n"


if __name__ == "__main__":
    for path, text in ((OUT, render()), (OUT_TRUNCATED, render_truncated())):
        path.write_text(text)
        print("{}: {} bytes".format(path, len(text.encode())))
