#!/usr/bin/python3
"""botocore as a test oracle for fo's protocol codecs (fo.awsproto).

For every entry of tests/conformance/operations.json this prints what botocore does:

  request   botocore's serializer on the entry's params, finished the way botocore's
            endpoint does it (prepare_request_dict + AWSRequest.prepare), split into
            method, path, raw query string, headers and body;
  response  a response document generated from the operation's output shape (every
            member filled to a bounded depth with deterministic sample values, written
            the way the service writes it: query/ec2 wrappers, locationName and
            flattened rules, rest-xml root element and header members, JSON names);
  parsed    botocore's parser on that document (ResponseMetadata dropped: botocore-only);
  response_sparse / parsed_sparse  the same for a document with the other edge of each
            type (empty lists, maps and strings, zero/negative numbers, false);
  error     one error document in the service's protocol (the operation's first modelled
            error, preferring one with extra members; EC2 has none modelled, so an EC2
            error code) with botocore's parse of it: code, message, type, request id and
            the modelled error members.

botocore works on fo's own models (fo_models.py), so its version does not matter.
Run with Debian's interpreter (python3-botocore): /usr/bin/python3 oracle.py [FILE]
Output: one JSON document on stdout, {"botocore": version, "operations": [...]}.

Value conventions in the JSON (the same ones fo.awsproto uses in Lua):
  timestamps -> seconds since the epoch (a number, fractions kept);
  blobs      -> {"$bytes": "<base64>"} (the Lua side turns it into the raw string);
  everything else as botocore returns it.
Inputs in operations.json use the same conventions (timestamps as epoch numbers; a blob
is a plain string, its UTF-8 bytes being the blob, or {"$bytes": base64}). botocore gets
them in a canonical order (structure members in model order, map keys sorted): see
from_params.

Self-checks (exit 1 with a message, so a broken generator cannot make the test vacuous):
every params entry passes botocore's validator; for every response (full and sparse),
botocore's parse equals the value tree the document was generated from; every output shape with members
parses into a non-empty table; every error parses with the code it was written with.
"""
import base64
import datetime
import json
import os
import sys
from urllib.parse import urlsplit

import botocore
import botocore.awsrequest
import botocore.model
import botocore.parsers
import botocore.serialize
import botocore.validate

import fo_models

ENDPOINTS = {
    "ec2": "https://ec2.eu-south-1.amazonaws.com",
    "elbv2": "https://elasticloadbalancing.eu-south-1.amazonaws.com",
    "autoscaling": "https://autoscaling.eu-south-1.amazonaws.com",
    "route53": "https://route53.amazonaws.com",
    "dynamodb": "https://dynamodb.eu-south-1.amazonaws.com",
    "sns": "https://sns.eu-south-1.amazonaws.com",
    "cloudwatch": "https://monitoring.us-east-1.amazonaws.com",
    "iam": "https://iam.amazonaws.com",
    "ssm": "https://ssm.eu-south-1.amazonaws.com",
    "sts": "https://sts.eu-south-1.amazonaws.com",
    "kms": "https://kms.eu-south-1.amazonaws.com",
    "logs": "https://logs.eu-south-1.amazonaws.com",
    "servicequotas": "https://servicequotas.eu-central-1.amazonaws.com",
}

# XML namespaces the services answer with.
XMLNS = {
    "ec2": "http://ec2.amazonaws.com/doc/2016-11-15/",
    "elbv2": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    "autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
    "route53": "https://route53.amazonaws.com/doc/2013-04-01/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "cloudwatch": "http://monitoring.amazonaws.com/doc/2010-08-01/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}

# Error codes for operations that model no errors (all of EC2, STS GetCallerIdentity):
# realistic codes of the service. An entry's "error" field names the code to use instead
# (a modelled error's code, or any code for an operation without modelled errors).
UNMODELLED_ERRORS = {
    "ec2": ("InvalidParameterValue", "Value (10.0.0.0/33) for parameter cidrBlock is invalid."),
    "sts": ("InvalidClientTokenId", "The security token included in the request is invalid."),
}

MAX_DEPTH = 7          # container nesting below which only scalar members are filled
T0 = 1700000000        # sample timestamps start here (2023-11-14T22:13:20Z)
REQUEST_ID = "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"


class OracleError(Exception):
    pass


# ---------------------------------------------------------------- JSON-safe values

def to_jsonable(v):
    if isinstance(v, dict):
        return {k: to_jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_jsonable(x) for x in v]
    if isinstance(v, datetime.datetime):
        ts = v.timestamp()
        return int(ts) if ts == int(ts) else ts
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
    return v


def from_params(v, shape):
    """operations.json params (JSON) -> botocore input values for `shape`."""
    if shape is None:
        return v
    t = shape.type_name
    # botocore writes structure members (XML elements) and map entries (query
    # `entry.N`) in the order of the caller's dict; a Lua table has no order, so fo uses
    # the model's member order (which Route 53's XML schema requires) and sorted map
    # keys. The oracle hands botocore the params in that canonical order.
    if t == "structure" and isinstance(v, dict):
        out = {}
        for k in shape.members:
            if k in v:
                out[k] = from_params(v[k], shape.members[k])
        for k, x in v.items():  # unknown members: botocore's validator reports them
            if k not in out:
                out[k] = x
        return out
    if t == "list" and isinstance(v, list):
        return [from_params(x, shape.member) for x in v]
    if t == "map" and isinstance(v, dict):
        return {k: from_params(v[k], shape.value) for k in sorted(v)}
    if t == "timestamp" and isinstance(v, (int, float)):
        return datetime.datetime.fromtimestamp(v, datetime.timezone.utc)
    if t == "blob":
        if isinstance(v, dict) and "$bytes" in v:
            return base64.b64decode(v["$bytes"])
        if isinstance(v, str):
            return v.encode("utf-8")
    return v


# ---------------------------------------------------------------- requests

def serialize(service_model, op_model, params):
    protocol = service_model.metadata["protocol"]
    validator = botocore.validate.ParamValidator()
    report = validator.validate(params, op_model.input_shape) if op_model.input_shape else None
    if report is not None and report.has_errors():
        raise OracleError(f"{service_model.service_name}.{op_model.name}: botocore rejects "
                          "the params: " + report.generate_report())
    serializer = botocore.serialize.create_serializer(protocol, include_validation=False)
    req = serializer.serialize_to_request(params, op_model)
    botocore.awsrequest.prepare_request_dict(req, ENDPOINTS[service_model.service_name])
    prepared = botocore.awsrequest.create_request_object(req).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body
    if body is None:
        body = b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = {k: v for k, v in prepared.headers.items()
               if k.lower() not in ("user-agent", "content-length")}
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in headers.items()}
    return {
        "method": prepared.method,
        "path": url.path,
        "query": url.query,
        "headers": headers,
        "body": body.decode("utf-8"),
    }


# ---------------------------------------------------------------- sample values

class Sampler:
    """Deterministic sample values for a shape: every member, 2 list items, 2 map keys.

    sparse=True writes the other edge of each type instead: every list and map empty
    (`<tagSet/>`, `[]`), some strings empty, zero and negative numbers, false booleans."""

    def __init__(self, sparse=False):
        self.n = 0
        self.sparse = sparse

    def next(self):
        self.n += 1
        return self.n

    def value(self, shape, name, depth=0, stack=()):
        t = shape.type_name
        if t == "structure":
            out = {}
            for mname, mshape in shape.members.items():
                if self.sparse and mshape.type_name in ("list", "map"):
                    out[mname] = [] if mshape.type_name == "list" else {}
                    continue
                if mshape.type_name in ("structure", "list", "map"):
                    if depth >= MAX_DEPTH or stack.count(mshape.name) >= 1:
                        continue
                if mshape.serialization.get("eventstream"):
                    continue
                out[mname] = self.value(mshape, mname, depth + 1, stack + (shape.name,))
            return out
        if t == "list":
            return [self.value(shape.member, name, depth + 1, stack + (shape.name,))
                    for _ in range(2)]
        if t == "map":
            out = {}
            for i in range(2):
                k = self.key(shape.key, name, i)
                out[k] = self.value(shape.value, name, depth + 1, stack + (shape.name,))
            return out
        n = self.next()
        if t == "string":
            if shape.enum:
                return shape.enum[n % len(shape.enum)]
            if shape.serialization.get("jsonvalue"):
                return json.dumps({"v": n})
            if self.sparse and n % 3 == 0 and not shape.serialization.get("location"):
                return ""
            if n % 7 == 0 and not shape.serialization.get("location"):
                # markup characters and non-ASCII text in bodies (never in headers)
                return f"{name}-{n} & <caf\u00e9> \"\u20ac\" 'x'"
            return f"{name}-{n}"
        if self.sparse:
            if t in ("integer", "long"):
                return 0 if n % 2 else -n
            if t in ("float", "double"):
                return -n - 0.25
            if t == "boolean":
                return False
        if t == "integer":
            return n
        if t == "long":
            return 5000000000 + n  # beyond 32 bits
        if t in ("float", "double"):
            return n + 0.5
        if t == "boolean":
            return n % 2 == 1
        if t == "timestamp":
            # every other sample has a fractional second
            return T0 + n + (0.5 if n % 2 else 0)
        if t == "blob":
            return b"blob-%d\x00\xff" % n
        raise OracleError(f"no sample for type {t} ({shape.name})")

    def key(self, key_shape, name, i):
        if key_shape.enum:
            return key_shape.enum[i % len(key_shape.enum)]
        return f"{name}Key{i + 1}"


def iso8601(ts):
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc822(ts):
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime("%a, %d %b %Y %H:%M:%S GMT")


def expected(v, shape):
    """The value tree as botocore is expected to parse it, in the JSON-safe form."""
    t = shape.type_name
    if t == "structure":
        return {k: expected(x, shape.members[k]) for k, x in v.items()}
    if t == "list":
        return [expected(x, shape.member) for x in v]
    if t == "map":
        return {k: expected(x, shape.value) for k, x in v.items()}
    if t == "timestamp":
        return int(v) if v == int(v) else v
    if t == "blob":
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if t == "string" and shape.serialization.get("jsonvalue"):
        return json.loads(v)
    return v


# ---------------------------------------------------------------- XML documents

def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def scalar_text(v, shape, default_ts="iso8601"):
    t = shape.type_name
    if t == "boolean":
        return "true" if v else "false"
    if t == "timestamp":
        fmt = (shape.serialization.get("timestampFormat") or default_ts).lower()
        if fmt == "iso8601":
            return iso8601(v)
        if fmt == "rfc822":
            return rfc822(v)
        return str(int(v) if v == int(v) else v)
    if t == "blob":
        return base64.b64encode(v).decode("ascii")
    if t in ("float", "double"):
        return repr(float(v))
    return str(v)


def member_xml_name(mshape, mname):
    # botocore's BaseXMLResponseParser._member_key_name
    if mshape.type_name == "list" and mshape.serialization.get("flattened"):
        n = mshape.member.serialization.get("name")
        if n is not None:
            return n
    return mshape.serialization.get("name") or mname


def xml_members(v, shape, out):
    """Appends the XML of structure value v's members (body members only)."""
    for mname, mv in v.items():
        mshape = shape.members[mname]
        if mshape.serialization.get("location"):
            continue
        if mshape.serialization.get("xmlAttribute"):
            continue  # written on the parent element by xml_element
        xml_value(mv, mshape, member_xml_name(mshape, mname), out)


def xml_attrs(v, shape):
    attrs = ""
    if shape.type_name == "structure":
        for mname, mv in v.items():
            mshape = shape.members[mname]
            if mshape.serialization.get("xmlAttribute"):
                attrs += ' %s="%s"' % (mshape.serialization["name"],
                                       xml_escape(scalar_text(mv, mshape)))
    return attrs


def xml_value(v, shape, tag, out):
    t = shape.type_name
    if t == "list":
        if shape.serialization.get("flattened"):
            for item in v:
                xml_value(item, shape.member, tag, out)
        else:
            child = shape.member.serialization.get("name") or "member"
            out.append("<%s>" % tag)
            for item in v:
                xml_value(item, shape.member, child, out)
            out.append("</%s>" % tag)
    elif t == "map":
        kname = shape.key.serialization.get("name") or "key"
        vname = shape.value.serialization.get("name") or "value"
        entries = []
        for k, x in v.items():
            e = []
            xml_value(k, shape.key, kname, e)
            xml_value(x, shape.value, vname, e)
            entries.append("".join(e))
        if shape.serialization.get("flattened"):
            for e in entries:
                out.append("<%s>%s</%s>" % (tag, e, tag))
        else:
            out.append("<%s>%s</%s>" % (tag, "".join("<entry>%s</entry>" % e for e in entries), tag))
    elif t == "structure":
        out.append("<%s%s>" % (tag, xml_attrs(v, shape)))
        xml_members(v, shape, out)
        out.append("</%s>" % tag)
    else:
        out.append("<%s>%s</%s>" % (tag, xml_escape(scalar_text(v, shape)), tag))


# ---------------------------------------------------------------- responses

def response_document(service_model, op_model, sampler):
    """-> (response dict for botocore, value tree the document carries)."""
    protocol = service_model.metadata["protocol"]
    svc = service_model.service_name
    shape = op_model.output_shape
    value = sampler.value(shape, op_model.name) if shape is not None else {}
    headers = {}
    status = 200
    if protocol in ("query", "ec2"):
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
               '<%sResponse xmlns="%s">' % (op_model.name, XMLNS[svc])]
        if protocol == "ec2":
            out.append("<requestId>%s</requestId>" % REQUEST_ID)
            if shape is not None:
                xml_members(value, shape, out)
            else:
                out.append("<return>true</return>")
        else:
            if shape is not None:
                wrapper = shape.serialization.get("resultWrapper") or (op_model.name + "Result")
                out.append("<%s>" % wrapper)
                xml_members(value, shape, out)
                out.append("</%s>" % wrapper)
            out.append("<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                       % REQUEST_ID)
        out.append("</%sResponse>" % op_model.name)
        body = "".join(out)
        headers["content-type"] = "text/xml;charset=UTF-8"
        headers["x-amzn-requestid"] = REQUEST_ID
    elif protocol == "json":
        body = json.dumps(json_value(value, shape) if shape is not None else {})
        headers["content-type"] = "application/x-amz-json-%s" % service_model.metadata["jsonVersion"]
        headers["x-amzn-requestid"] = REQUEST_ID
    elif protocol == "rest-xml":
        headers["x-amzn-requestid"] = REQUEST_ID
        body = ""
        if shape is not None:
            for mname, mv in value.items():
                mshape = shape.members[mname]
                loc = mshape.serialization.get("location")
                if loc == "header":
                    headers[mshape.serialization.get("name", mname).lower()] = \
                        scalar_text(mv, mshape, "rfc822")
                elif loc == "statusCode":
                    status = mv
                elif loc is not None:
                    raise OracleError(f"{op_model.name}: output location {loc} not supported")
            payload = shape.serialization.get("payload")
            out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
            if payload:
                pshape = shape.members[payload]
                root = pshape.serialization.get("name") or pshape.name
                if payload in value:
                    sub = value[payload]
                    out.append('<%s xmlns="%s">' % (root, XMLNS[svc]))
                    xml_members(sub, pshape, out)
                    out.append("</%s>" % root)
            else:
                out.append('<%s xmlns="%s">' % (shape.name, XMLNS[svc]))
                xml_members(value, shape, out)
                out.append("</%s>" % shape.name)
            body = "".join(out)
            headers["content-type"] = "text/xml"
            if op_model.http.get("responseCode"):
                status = op_model.http["responseCode"]
            elif op_model.name.startswith("Create"):
                status = 201
    else:
        raise OracleError(f"protocol {protocol} not supported")
    return {"status_code": status, "headers": headers, "body": body.encode("utf-8")}, value


def json_value(v, shape):
    t = shape.type_name
    if t == "structure":
        return {shape.members[k].serialization.get("name", k): json_value(x, shape.members[k])
                for k, x in v.items()}
    if t == "list":
        return [json_value(x, shape.member) for x in v]
    if t == "map":
        return {k: json_value(x, shape.value) for k, x in v.items()}
    if t == "timestamp":
        fmt = (shape.serialization.get("timestampFormat") or "unixtimestamp").lower()
        if fmt == "iso8601":
            return iso8601(v)
        return int(v) if v == int(v) else v
    if t == "blob":
        return base64.b64encode(v).decode("ascii")
    return v


def botocore_response(resp):
    """The response as botocore's endpoint hands it to the parser: case-insensitive headers."""
    r = dict(resp)
    r["headers"] = botocore.awsrequest.HeadersDict(resp["headers"])
    return r


def strip_metadata(parsed):
    parsed = dict(parsed)
    parsed.pop("ResponseMetadata", None)
    return parsed


# ---------------------------------------------------------------- errors

def pick_error(service_model, op_model, wanted=None):
    errs = list(op_model.error_shapes)
    if wanted is not None:
        for e in errs:
            if (e.error_code or e.name) == wanted:
                return e
        if errs:
            raise OracleError(f"{op_model.name}: error {wanted} is not one of its modelled errors")
        return None
    rich = [e for e in errs if set(e.members) - {"message", "Message"}]
    if rich:
        return rich[0]
    return errs[0] if errs else None


def error_document(service_model, op_model, sampler, wanted=None):
    """-> (response dict, code, message, type, fields-value tree or {}, error shape)."""
    protocol = service_model.metadata["protocol"]
    svc = service_model.service_name
    eshape = pick_error(service_model, op_model, wanted)
    message = "The request could not be completed: it is <bad> & \"wrong\"."
    extra = {}
    if eshape is not None:
        code = eshape.error_code or eshape.name
        status = eshape.metadata.get("error", {}).get("httpStatusCode", 400)
        etype = "Sender" if eshape.metadata.get("error", {}).get("senderFault", True) else "Receiver"
        full = sampler.value(eshape, code)
        # The message travels in the protocol's own Message field.
        extra = {k: x for k, x in full.items() if k.lower() != "message"}
    else:
        if svc not in UNMODELLED_ERRORS:
            raise OracleError(f"{op_model.name}: no modelled error and no default code")
        code, message = UNMODELLED_ERRORS[svc]
        if wanted is not None:
            code, message = wanted, "The request could not be completed: <%s> & \"why\"." % wanted
        status, etype = (403 if code == "InvalidClientTokenId" else 400), "Sender"
    headers = {"x-amzn-requestid": REQUEST_ID}
    if protocol == "json":
        doc = {"__type": "com.amazonaws.%s#%s" % (service_model.endpoint_prefix, code),
               "message": message}
        if eshape is not None:
            doc.update(json_value(extra, eshape))
        body = json.dumps(doc)
        headers["content-type"] = "application/x-amz-json-%s" % service_model.metadata["jsonVersion"]
        etype = None
    elif protocol == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                "<Code>%s</Code><Message>%s</Message></Error></Errors>"
                "<RequestID>%s</RequestID></Response>" % (code, xml_escape(message), REQUEST_ID))
        headers["content-type"] = "text/xml;charset=UTF-8"
        etype = None
    else:  # query, rest-xml
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
               '<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code>'
               "<Message>%s</Message>" % (XMLNS[svc], etype, code, xml_escape(message))]
        if eshape is not None:
            xml_members(extra, eshape, out)
        out.append("</Error><RequestId>%s</RequestId></ErrorResponse>" % REQUEST_ID)
        body = "".join(out)
        headers["content-type"] = "text/xml"
    resp = {"status_code": status, "headers": headers, "body": body.encode("utf-8")}
    return resp, code, message, etype, extra, eshape


def parse_error(service_model, op_model, parser, resp):
    # What botocore's endpoint does: parse with the output shape (status >= 301 takes the
    # error path), then add the modelled error's members (endpoint._add_modeled_error_fields).
    parsed = parser.parse(resp, op_model.output_shape)
    code = parsed.get("Error", {}).get("Code")
    eshape = service_model.shape_for_error_code(code)
    fields = {}
    if eshape is not None:
        fields = parser.parse(resp, eshape)
    err = parsed.get("Error", {})
    return {
        "code": err.get("Code"),
        "message": err.get("Message"),
        "type": err.get("Type"),
        "request_id": parsed.get("ResponseMetadata", {}).get("RequestId"),
        "fields": to_jsonable(fields),
    }


# ---------------------------------------------------------------- main

def run_entry(entry, models):
    svc, opname = entry["service"], entry["operation"]
    if svc not in models:
        models[svc] = fo_models.load(svc)
    sm = models[svc]
    try:
        op = sm.operation_model(opname)
    except botocore.model.OperationNotFoundError:
        raise OracleError(f"{svc}.{opname}: no such operation in fo's model")
    params = from_params(entry.get("params", {}), op.input_shape)
    protocol = sm.metadata["protocol"]
    parser = botocore.parsers.create_parser(protocol)
    sampler = Sampler()

    request = serialize(sm, op, params)

    resp, value = response_document(sm, op, sampler)
    parsed = to_jsonable(strip_metadata(parser.parse(botocore_response(resp), op.output_shape)))
    want = expected(value, op.output_shape) if op.output_shape is not None else {}
    if parsed != want:
        raise OracleError(f"{svc}.{opname}: botocore's parse differs from the generated "
                          f"document's values (generator bug):\n{json.dumps(parsed)[:2000]}"
                          f"\n!=\n{json.dumps(want)[:2000]}")
    if op.output_shape is not None and op.output_shape.members and not parsed:
        raise OracleError(f"{svc}.{opname}: the response parsed into an empty table")

    sresp, svalue = response_document(sm, op, Sampler(sparse=True))
    sparsed = to_jsonable(strip_metadata(parser.parse(botocore_response(sresp), op.output_shape)))
    swant = expected(svalue, op.output_shape) if op.output_shape is not None else {}
    if sparsed != swant:
        raise OracleError(f"{svc}.{opname}: botocore's parse of the sparse document differs "
                          f"from its values (generator bug):\n{json.dumps(sparsed)[:2000]}"
                          f"\n!=\n{json.dumps(swant)[:2000]}")

    eresp, code, message, etype, extra, eshape = error_document(sm, op, sampler, entry.get("error"))
    perr = parse_error(sm, op, parser, botocore_response(eresp))
    if perr["code"] != code or perr["message"] != message:
        raise OracleError(f"{svc}.{opname}: error document parsed as {perr}")
    if eshape is not None and extra:
        want_fields = expected(extra, eshape)
        if any(perr["fields"].get(k) != v for k, v in want_fields.items()):
            raise OracleError(f"{svc}.{opname}: modelled error members parsed as "
                              f"{perr['fields']}, expected {want_fields}")

    return {
        "service": svc,
        "operation": opname,
        "protocol": protocol,
        "params": entry.get("params", {}),
        "request": request,
        "response": {"status": resp["status_code"], "headers": resp["headers"],
                     "body": resp["body"].decode("utf-8")},
        "parsed": parsed,
        "response_sparse": {"status": sresp["status_code"], "headers": sresp["headers"],
                            "body": sresp["body"].decode("utf-8")},
        "parsed_sparse": sparsed,
        "error": {"status": eresp["status_code"], "headers": eresp["headers"],
                  "body": eresp["body"].decode("utf-8"),
                  "error_shape": eshape.name if eshape is not None else None},
        "parsed_error": perr,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "operations.json")
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)["operations"]
    models = {}
    out, failures = [], []
    for entry in entries:
        try:
            out.append(run_entry(entry, models))
        except OracleError as e:
            failures.append(str(e))
        except Exception as e:  # noqa: BLE001 - report which entry broke botocore
            failures.append(f"{entry.get('service')}.{entry.get('operation')}: "
                            f"{type(e).__name__}: {e}")
    if failures:
        sys.stderr.write("oracle: %d of %d entries failed:\n  %s\n"
                         % (len(failures), len(entries), "\n  ".join(failures)))
        sys.exit(1)
    json.dump({"botocore": botocore.__version__, "operations": out}, sys.stdout,
              sort_keys=True, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
