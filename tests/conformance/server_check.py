#!/usr/bin/python3
"""botocore reads the simulator's answers: for each case of the JSON file given as the
argument (written by tests/lua/proto/test_server_codec.lua), botocore's parser for the
service's protocol parses `response` (made by fo.awsproto.serialize_response) and `error`
(made by serialize_error), as botocore's endpoint hands them over.

Prints a JSON array, one entry per case:
  {"problems": [differences between botocore's parse and `expected`, and a missing or wrong
                ResponseMetadata.RequestId],
   "error": {"code", "message", "request_id"} as botocore parsed the error document}
Values in `expected` follow oracle.py's conventions: timestamps as epoch seconds, blobs as
{"$bytes": base64}. Run with Debian's interpreter (python3-botocore).
"""
import json
import os
import sys

import botocore.awsrequest
import botocore.model
import botocore.parsers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import to_jsonable as jsonable  # noqa: E402  (the same value conventions)
import fo_models  # noqa: E402  (fo's models, as the oracle reads them)


def differences(want, got, path, out):
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            differences(want.get(k), got.get(k), f"{path}.{k}", out)
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            out.append(f"{path}: {len(want)} items expected, botocore has {len(got)}")
        for i, (a, b) in enumerate(zip(want, got)):
            differences(a, b, f"{path}[{i + 1}]", out)
    elif isinstance(want, (int, float)) and isinstance(got, (int, float)) \
            and not isinstance(want, bool) and not isinstance(got, bool):
        if abs(want - got) > 1e-9 * max(1, abs(want)):
            out.append(f"{path}: expected {want!r}, botocore has {got!r}")
    elif want != got:
        out.append(f"{path}: expected {want!r}, botocore has {got!r}")


def response(resp):
    return {
        "status_code": resp["status"],
        "headers": botocore.awsrequest.HeadersDict(resp.get("headers") or {}),
        "body": resp.get("body", "").encode("utf-8"),
    }


def main(path):
    with open(path, "rb") as f:
        cases = json.load(f)
    models = {}
    results = []
    for case in cases:
        svc = case["service"]
        if svc not in models:
            models[svc] = fo_models.load(svc)
        sm = models[svc]
        op = sm.operation_model(case["operation"])
        parser = botocore.parsers.create_parser(sm.metadata["protocol"])
        parsed = parser.parse(response(case["response"]), op.output_shape)
        problems = []
        meta = parsed.pop("ResponseMetadata", {})
        if meta.get("RequestId") is None:
            problems.append("no ResponseMetadata.RequestId")
        if meta.get("HTTPStatusCode") != case["response"]["status"]:
            problems.append(f"HTTP status {meta.get('HTTPStatusCode')}")
        differences(case["expected"] or {}, jsonable(parsed), "output", problems)
        err = parser.parse(response(case["error"]), op.output_shape)
        results.append({
            "problems": problems,
            "error": {
                "code": err.get("Error", {}).get("Code"),
                "message": err.get("Error", {}).get("Message"),
                "request_id": err.get("ResponseMetadata", {}).get("RequestId"),
            },
        })
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
