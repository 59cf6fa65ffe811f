"""JSON patches in Kubernetes audit events: a patch request's operations read as the partial object they set, and
the patches mutating admission webhooks applied (logged as audit annotations) applied to the request."""
import copy
import json
from typing import Any, Dict, List, Mapping, Optional

from .scalars import is_ascii_digits, numeric_key


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _listify(value: Any) -> Any:
    """Dicts built from JSON-patch paths whose keys are all list positions become lists."""
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) for k, v in value.items()}
    if converted and all(is_ascii_digits(k) or k == "-" for k in converted):  # never "²" or "١" (int() fails)
        return [converted[k] for k in sorted(converted, key=lambda k: (k == "-", numeric_key(k)))]
    return converted


def json_patch_object(operations: List[Any]) -> Optional[Dict[str, Any]]:
    """The values a JSON patch (RFC 6902) adds or replaces, as a partial object; None when it sets nothing."""
    root: Dict[str, Any] = {}
    for operation in operations:
        if not isinstance(operation, dict) or operation.get("op") not in ("add", "replace"):
            continue
        path = _text(operation.get("path"))
        keys = [k.replace("~1", "/").replace("~0", "~") for k in path.split("/")[1:]]
        if not keys:
            continue
        node = root
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1]] = operation.get("value")
    result = _listify(root)
    return result if isinstance(result, dict) and result else None


def _index(key: str) -> int:
    """A JSON-pointer list position (ASCII digits, at most 9 of them), else -1."""
    return int(key) if is_ascii_digits(key) and len(key) <= 9 else -1


def apply_patch(obj: Any, operations: List[Any]) -> Any:
    """`obj` with the add/replace operations of an RFC 6902 patch applied where their path exists (a copy)."""
    result = copy.deepcopy(obj)
    for operation in operations:
        if not isinstance(operation, dict) or operation.get("op") not in ("add", "replace"):
            continue
        keys = [k.replace("~1", "/").replace("~0", "~") for k in _text(operation.get("path")).split("/")[1:]]
        node = result
        for key in keys[:-1]:
            if isinstance(node, dict):
                node = node.setdefault(key, {})
            elif isinstance(node, list) and 0 <= _index(key) < len(node):
                node = node[_index(key)]
            else:
                node = None
                break
        last = keys[-1] if keys else ""
        if isinstance(node, dict) and keys:
            node[last] = operation.get("value")
        elif isinstance(node, list) and (last == "-" or 0 <= _index(last) <= len(node)):
            position = len(node) if last == "-" else _index(last)
            if operation.get("op") == "add":
                node.insert(position, operation.get("value"))
            elif position < len(node):
                node[position] = operation.get("value")
    return result


def webhook_patches(annotations: Mapping[str, Any]) -> List[Any]:
    """The JSON-patch operations mutating admission webhooks applied, in order, from the audit annotations
    `patch.webhook.admission.k8s.io/round_<r>_index_<i>` (logged at level Metadata and above)."""
    found = []
    for key, value in annotations.items():
        if not key.startswith("patch.webhook.admission.k8s.io/round_") or not isinstance(value, str):
            continue
        try:
            patch = json.loads(value)
        except (ValueError, RecursionError):
            continue
        operations = patch.get("patch") if isinstance(patch, dict) else None
        if isinstance(operations, list):
            order = key.rsplit("/", 1)[1].replace("round_", "").split("_index_")
            found.append(([numeric_key(part) for part in order], operations))
    return [op for _, ops in sorted(found, key=lambda item: item[0]) for op in ops]
