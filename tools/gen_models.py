#!/usr/bin/env python3
"""Writes fo's compact AWS API models (lua/fo/aws/models/<service>.json) from the models
botocore publishes (Debian's python3-botocore): service-2, waiters-2 and paginators-1,
with documentation stripped. Re-runnable; the output is deterministic (sorted keys).

usage: tools/gen_models.py [--data DIR] [--out DIR] [--check]
"""
import argparse
import json
import os
import sys

# fo's module name -> botocore's service directory.
SERVICES = {
    "ec2": "ec2",
    "elbv2": "elbv2",
    "autoscaling": "autoscaling",
    "route53": "route53",
    "dynamodb": "dynamodb",
    "sns": "sns",
    "cloudwatch": "cloudwatch",
    "iam": "iam",
    "ssm": "ssm",
    "sts": "sts",
}

# Keys that only carry prose or examples; nothing on the wire depends on them.
DROP = {"documentation", "documentationUrl", "examples", "deprecatedMessage"}


def default_data_dir():
    try:
        import botocore
    except ImportError:
        sys.exit("gen_models: botocore not found; install python3-botocore or pass --data")
    return os.path.join(os.path.dirname(botocore.__file__), "data")


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def with_member_order(shapes):
    """Records each structure's member order as `memberOrder`: JSON objects (and Lua tables)
    lose it, and rest-xml services check element order against their XML schema."""
    for shape in shapes.values():
        members = shape.get("members")
        if shape.get("type") == "structure" and members and len(members) > 1:
            shape["memberOrder"] = list(members)
    return shapes


def latest_version(service_dir):
    versions = sorted(d for d in os.listdir(service_dir)
                      if os.path.isfile(os.path.join(service_dir, d, "service-2.json")))
    if not versions:
        sys.exit(f"gen_models: no service-2.json under {service_dir}")
    return versions[-1]


def load(path, key=None):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return doc.get(key, {}) if key else doc


def build(data_dir, name, botocore_name):
    service_dir = os.path.join(data_dir, botocore_name)
    version = latest_version(service_dir)
    base = os.path.join(service_dir, version)
    service = strip(load(os.path.join(base, "service-2.json")))
    return {
        "name": name,
        "metadata": service["metadata"],
        "operations": service["operations"],
        "shapes": with_member_order(service["shapes"]),
        "waiters": strip(load(os.path.join(base, "waiters-2.json"), "waiters")),
        "paginators": strip(load(os.path.join(base, "paginators-1.json"), "pagination")),
    }


def render(model):
    return json.dumps(model, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="botocore's data directory")
    ap.add_argument("--out", default=os.path.join(here, "..", "lua", "fo", "aws", "models"))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a committed model differs from what would be written")
    args = ap.parse_args()
    data_dir = args.data or default_data_dir()
    os.makedirs(args.out, exist_ok=True)
    stale = []
    for name, botocore_name in sorted(SERVICES.items()):
        text = render(build(data_dir, name, botocore_name))
        path = os.path.join(args.out, name + ".json")
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if args.check:
            if old != text:
                stale.append(path)
        elif old != text:
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
            print(f"gen_models: wrote {path} ({len(text)} bytes)")
    if stale:
        sys.exit("gen_models: out of date (rerun tools/gen_models.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
