#!/usr/bin/env python3
"""Writes fo's compact AWS API models (lua/fo/aws/models/<service>.json) from the models
botocore publishes: service-2, waiters-2 and paginators-1, with documentation stripped,
and lua/fo/aws/models/generated-from.json naming the botocore version they came from and
each model's SHA-256. Re-runnable; the output is deterministic (sorted keys).

The committed models are the source of truth. Regenerate them with the botocore version
the manifest names (or a newer one, on purpose) under the interpreter that has it:

    python3 tools/gen_models.py            # e.g. pip's botocore 1.43.x

--check never writes. It always verifies that every model matches the manifest's hash (no
hand edits, none missing); when the botocore at hand is the manifest's version it also
regenerates in memory and compares byte for byte. With another botocore (Debian's
python3-botocore 1.29, say) it says so and does not compare: an older botocore cannot
reproduce newer models, and that is not a defect of the tree.

usage: tools/gen_models.py [--data DIR] [--out DIR] [--check]
"""
import argparse
import gzip
import hashlib
import json
import os
import re
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
    "kms": "kms",
    "logs": "logs",
    "s3": "s3",
    "acm": "acm",
    "servicequotas": "service-quotas",
}

# The protocol fo speaks with each service, by botocore's name: the one place that choice
# is made. It becomes the model's metadata.protocol, which fo's client, the simulator and
# the conformance oracle all read; metadata.protocols keeps the list AWS offers (in its order
# of preference), and the generator refuses a choice that list does not contain. fo's codecs
# implement ec2, query, rest-xml and json. CloudWatch offers smithy-rpc-v2-cbor, json and
# query; fo keeps it on query (its JSON form reports errors the awsQueryCompatible way,
# which fo's json codec does not read).
PROTOCOL = {
    "ec2": "ec2",
    "elbv2": "query",
    "autoscaling": "query",
    "route53": "rest-xml",
    "dynamodb": "json",
    "sns": "query",
    "cloudwatch": "query",
    "iam": "query",
    "ssm": "json",
    "sts": "query",
    "kms": "json",
    "logs": "json",
    "s3": "rest-xml",
    "acm": "json",
    "servicequotas": "json",
}

MANIFEST = "generated-from.json"

# Keys that only carry prose or examples; nothing on the wire depends on them.
DROP = {"documentation", "documentationUrl", "examples", "deprecatedMessage"}


def default_data_dir():
    try:
        import botocore
    except ImportError:
        return None
    return os.path.join(os.path.dirname(botocore.__file__), "data")


def botocore_version(data_dir):
    """The __version__ of the botocore package whose data directory this is."""
    init = os.path.join(data_dir, "..", "__init__.py")
    try:
        with open(init, encoding="utf-8") as f:
            m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
    except OSError:
        m = None
    if not m:
        sys.exit(f"gen_models: cannot tell the botocore version of {data_dir} (no {init})")
    return m.group(1)


def choose_protocol(name, metadata):
    offered = metadata.get("protocols") or [metadata.get("protocol")]
    if PROTOCOL[name] not in offered:
        sys.exit(f"gen_models: {name} no longer offers {PROTOCOL[name]} (it offers {offered}); "
                 "choose one fo implements in PROTOCOL")
    return PROTOCOL[name]


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
                      if any(os.path.isfile(os.path.join(service_dir, d, "service-2.json" + z))
                             for z in ("", ".gz")))
    if not versions:
        sys.exit(f"gen_models: no service-2.json under {service_dir}")
    return versions[-1]


def load(path, key=None):
    """A botocore data file, plain or (newer botocores) gzipped; {} when there is none."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    elif os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rt", encoding="utf-8") as f:
            doc = json.load(f)
    else:
        return {}
    return doc.get(key, {}) if key else doc


def build(data_dir, name, botocore_name):
    service_dir = os.path.join(data_dir, botocore_name)
    version = latest_version(service_dir)
    base = os.path.join(service_dir, version)
    service = strip(load(os.path.join(base, "service-2.json")))
    metadata = service["metadata"]
    metadata["protocol"] = choose_protocol(name, metadata)
    return {
        "name": name,
        "metadata": metadata,
        "operations": service["operations"],
        "shapes": with_member_order(service["shapes"]),
        "waiters": strip(load(os.path.join(base, "waiters-2.json"), "waiters")),
        "paginators": strip(load(os.path.join(base, "paginators-1.json"), "pagination")),
    }


def render(model):
    return json.dumps(model, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    print(f"gen_models: wrote {path} ({len(text)} bytes)")


def manifest_of(version, texts):
    return render({
        "botocore": version,
        "generator": "tools/gen_models.py",
        "models": {name: {"protocol": json.loads(text)["metadata"]["protocol"],
                          "sha256": sha256(text)} for name, text in sorted(texts.items())},
    })


def check_hashes(out):
    """The committed models against the manifest; returns its botocore version."""
    path = os.path.join(out, MANIFEST)
    text = read(path)
    if text is None:
        sys.exit(f"gen_models: {path} is missing (rerun tools/gen_models.py)")
    manifest = json.loads(text)
    problems = []
    if sorted(manifest.get("models", {})) != sorted(SERVICES):
        problems.append(f"{MANIFEST} lists {sorted(manifest.get('models', {}))}, "
                        f"the generator {sorted(SERVICES)}")
    for name in sorted(SERVICES):
        model = read(os.path.join(out, name + ".json"))
        want = manifest.get("models", {}).get(name, {}).get("sha256")
        if model is None:
            problems.append(f"{name}.json is missing")
        elif sha256(model) != want:
            problems.append(f"{name}.json does not match its hash in {MANIFEST} (edited by hand?)")
    if problems:
        sys.exit("gen_models: " + "; ".join(problems)
                 + f" (regenerate with botocore {manifest.get('botocore')}: tools/gen_models.py)")
    return manifest["botocore"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="botocore's data directory")
    ap.add_argument("--out", default=os.path.join(here, "..", "lua", "fo", "aws", "models"))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a committed model differs from its manifest or, with the "
                         "manifest's botocore at hand, from what would be written")
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    data_dir = args.data or default_data_dir()
    if args.check:
        recorded = check_hashes(out)
        if data_dir is None:
            print(f"gen_models: models match {MANIFEST} (botocore {recorded}); no botocore "
                  "here to regenerate them with")
            return
        version = botocore_version(data_dir)
        if version != recorded:
            print(f"gen_models: models match {MANIFEST} (botocore {recorded}); botocore here "
                  f"is {version}, so they were not regenerated for comparison")
            return
    elif data_dir is None:
        sys.exit("gen_models: botocore not found; run under a python3 that has it or pass --data")
    version = botocore_version(data_dir)
    texts = {name: render(build(data_dir, name, botocore_name))
             for name, botocore_name in sorted(SERVICES.items())}
    files = {name + ".json": text for name, text in texts.items()}
    files[MANIFEST] = manifest_of(version, texts)
    if args.check:
        stale = [f for f, text in sorted(files.items()) if read(os.path.join(out, f)) != text]
        if stale:
            sys.exit(f"gen_models: out of date against botocore {version} "
                     "(rerun tools/gen_models.py): " + ", ".join(stale))
        print(f"gen_models: models are up to date with botocore {version}")
        return
    os.makedirs(out, exist_ok=True)
    for f, text in sorted(files.items()):
        if read(os.path.join(out, f)) != text:
            write(os.path.join(out, f), text)


if __name__ == "__main__":
    main()
