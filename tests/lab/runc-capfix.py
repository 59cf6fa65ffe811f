#!/usr/bin/python3
"""Lab-only runc wrapper for VMs whose capability bounding set lacks CAP_SYS_RESOURCE (tests/lab/README.md).

Deletes CAP_SYS_RESOURCE from every capability list of the bundle's config.json (create/run) or of the --process
JSON (exec), then execs the real /usr/sbin/runc with the same arguments. Installed only when CapBnd lacks bit 24.
"""
import json
import os
import sys

REAL = "/usr/sbin/runc"


def strip(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return
    caps = (data.get("process", data) or {}).get("capabilities") or {}
    for name, values in list(caps.items()):
        if isinstance(values, list):
            caps[name] = [v for v in values if v != "CAP_SYS_RESOURCE"]
    with open(path, "w") as handle:
        json.dump(data, handle)


args = sys.argv[1:]
if "create" in args or "run" in args:
    bundle = args[args.index("--bundle") + 1] if "--bundle" in args else os.getcwd()
    strip(os.path.join(bundle, "config.json"))
if "exec" in args and "--process" in args:
    strip(args[args.index("--process") + 1])
os.execv(REAL, [REAL] + args)
