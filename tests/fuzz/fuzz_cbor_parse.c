/* libFuzzer target: the smithy-rpc-v2-cbor protocol's response side (parse, parse_error)
 * and the generic CBOR decoder (fo.awsproto.cbor_decode) on arbitrary bytes, with a small
 * model that uses every shape type. See docs/fuzzing.md. */
#include "fuzz_common.h"

static const char SETUP[] =
    "local proto = require 'fo.awsproto'\n"
    "local S = {\n"
    "  Out = { type = 'structure', members = {\n"
    "    S = { shape = 'Str' }, I = { shape = 'Int' }, L = { shape = 'Long' },\n"
    "    D = { shape = 'Double' }, F = { shape = 'Float' }, B = { shape = 'Bool' },\n"
    "    T = { shape = 'Ts' }, Bl = { shape = 'Blob' }, List = { shape = 'List' },\n"
    "    Map = { shape = 'Map' }, Sub = { shape = 'Out' }, Subs = { shape = 'OutList' },\n"
    "    U = { shape = 'Union' } } },\n"
    "  Str = { type = 'string' }, Int = { type = 'integer' }, Long = { type = 'long' },\n"
    "  Double = { type = 'double' }, Float = { type = 'float' }, Bool = { type = 'boolean' },\n"
    "  Ts = { type = 'timestamp' }, Blob = { type = 'blob' },\n"
    "  List = { type = 'list', member = { shape = 'Str' } },\n"
    "  Map = { type = 'map', key = { shape = 'Str' }, value = { shape = 'List' } },\n"
    "  OutList = { type = 'list', member = { shape = 'Out' } },\n"
    "  Union = { type = 'structure', union = true, members = { A = { shape = 'Str' },\n"
    "    N = { shape = 'Int' }, Sub = { shape = 'Out' } } },\n"
    "  Err = { type = 'structure', exception = true, members = { message = { shape = 'Str' },\n"
    "    Reason = { shape = 'Str' }, Sub = { shape = 'Out' } } },\n"
    "}\n"
    "local M = { name = 'test', metadata = { protocol = 'smithy-rpc-v2-cbor',\n"
    "  targetPrefix = 'Test', awsQueryCompatible = {} }, shapes = S, operations = {\n"
    "  Op = { name = 'Op', output = { shape = 'Out' }, errors = { { shape = 'Err' } } } } }\n"
    "local function expected(err, what)\n"
    "  if type(err) ~= 'string' or not err:find(what, 1, true) then\n"
    "    error('not a clear codec error: ' .. tostring(err), 0)\n"
    "  end\n"
    "end\n"
    "local headers = { ['x-amzn-requestid'] = 'r', ['x-amzn-query-error'] = 'Err;Sender' }\n"
    "function run(body)\n"
    "  local ok, err = pcall(proto.parse, M, 'Op', { status = 200, headers = {}, body = body })\n"
    "  if not ok then expected(err, 'test.Op: ') end\n"
    "  ok, err = pcall(proto.cbor_decode, body)\n"
    "  if not ok then expected(err, 'malformed CBOR response: ') end\n"
    "  local e = proto.parse_error(M, 'Op', { status = 400, headers = headers, body = body })\n"
    "  assert(type(e) == 'table' and type(e.fields) == 'table', 'parse_error: no result')\n"
    "  e = proto.parse_error(M, 'Op', { status = 400, headers = {}, body = body })\n"
    "  assert(type(e) == 'table' and type(e.fields) == 'table', 'parse_error: no result')\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_run(SETUP, data, size);
}
