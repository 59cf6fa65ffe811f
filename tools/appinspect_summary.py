"""Summarise an AppInspect JSON report: counts per result, and the names of non-passing checks."""
import json
import sys
from collections import Counter
from typing import Dict, List


def findings(report_path: str) -> Dict[str, List[str]]:
    """Check names per result ('failure', 'future_failure', 'warning', ...) from a --data-format json report."""
    with open(report_path, encoding="utf-8") as handle:
        report = json.load(handle)
    by_result: Dict[str, List[str]] = {}
    for group in report["reports"][0]["groups"]:
        for check in group["checks"]:
            by_result.setdefault(check["result"], []).append(check["name"])
    return by_result


if __name__ == "__main__":
    result = findings(sys.argv[1])
    print("AppInspect:", ", ".join("{} {}".format(n, r) for r, n in sorted(Counter({k: len(v) for k, v in result.items()}).items())))
    for level in ("failure", "error", "future_failure", "warning"):
        for name in sorted(result.get(level, [])):
            print("  {}: {}".format(level, name))
