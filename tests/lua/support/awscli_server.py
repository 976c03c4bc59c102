# The AWS CLI's own entry point (awscli.clidriver, what the `aws` script runs) kept warm in
# one Python process and driven over loopback HTTP by tests/lua/sim/test_awscli.lua. Run by
# the CLI's own interpreter: Debian's /usr/bin/python3 for its awscli (v2), the pip
# awscli's python for the current one (v1).
#
# Why: each `aws` process spends ~1 s importing botocore and loading a service model
# before it sends a byte; hundreds of calls would take minutes. Here every command still
# goes through the CLI's main(argv) (v2: AWSCLIEntryPoint(driver).main(argv); v1:
# create_clidriver().main(argv)) — argument parsing, the CLI's customizations,
# --query, waiters, error handlers and their exit codes — but the service models are
# loaded once. awscli's own test harness runs the CLI in-process the same way
# (awscli.testutils patches sys.stdout/sys.stderr around driver.main). Each command gets a
# new driver and session, as a process would; only the data loader (the parsed JSON
# models) is shared. The environment (credentials, config files, retry mode) is the
# process's: the test sets it when it starts this helper.
#
# Usage: python3 awscli_server.py PORTFILE
#   POST /run  {"argv": [...]} -> {"rc": n, "stdout": "...", "stderr": "..."}
#   POST /quit -> {"ok": true, "cpu": seconds of CPU used}, and stops.
import gc
import io
import json
import os
import resource
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import inspect

from awscli.clidriver import create_clidriver

try:  # AWS CLI v2
    from awscli.clidriver import AWSCLIEntryPoint
except ImportError:  # v1: the driver's main is the entry point
    AWSCLIEntryPoint = None

# After awscli: it puts its own botocore first on the path (Debian's awscli 2 carries one).
import awscli.utils  # noqa: E402
import botocore.loaders  # noqa: E402
import botocore.session  # noqa: E402

# One data loader for every session: service models and endpoint data are read and
# parsed once (the loader caches what it loads), not once per command.
_loader = botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))
botocore.session.create_loader = lambda search_path_string=None: _loader


# Only what the CLI needs of the environment (the test's AWS_* settings, HOME, PATH,
# locale): nothing else of the caller's reaches it.
for _k in list(os.environ):
    if not (_k.startswith(("AWS_", "LC_")) or _k in ("HOME", "PATH", "LANG", "TMPDIR", "NO_PROXY",
                                                     "no_proxy", "TZ")):
        del os.environ[_k]


# v2 builds one OutputStreamFactory per service command (hundreds per command line), each
# with a copy of os.environ (for the pager, which never runs here: output is not a
# terminal and --no-cli-pager is given). A copy of a plain dict snapshot is the same
# mapping, made ~100 times faster; the helper's environment does not change. (v1 has no
# pager: its factory takes no environment.)
_environ = dict(os.environ)
_osf_init = awscli.utils.OutputStreamFactory.__init__


def _osf_init_snapshot(self, session, popen=None, environ=None, default_less_flags="FRX"):
    if environ is None:
        environ = dict(_environ)
    _osf_init(self, session, popen, environ, default_less_flags)


if "environ" in inspect.signature(_osf_init).parameters:
    awscli.utils.OutputStreamFactory.__init__ = _osf_init_snapshot


class _Routed:
    """sys.stdout/sys.stderr replacement: writes go to the calling thread's buffer."""

    def __init__(self, real, local, name):
        self._real, self._local, self._name = real, local, name

    def _target(self):
        return getattr(self._local, self._name, None) or self._real

    def write(self, s):
        return self._target().write(s)

    def flush(self):
        return self._target().flush()

    def __getattr__(self, attr):
        return getattr(self._target(), attr)


_local = threading.local()
sys.stdout = _Routed(sys.stdout, _local, "out")
sys.stderr = _Routed(sys.stderr, _local, "err")

def _run(argv):
    # A new driver (session, command table, event handlers) per command, as each `aws`
    # process has: the CLI's customizations register handlers on the session while they
    # build a command's arguments, so a reused driver would carry them to the next one.
    _local.out, _local.err = io.StringIO(), io.StringIO()
    try:
        if AWSCLIEntryPoint is not None:
            rc = AWSCLIEntryPoint(create_clidriver(argv)).main(argv)
        else:
            rc = create_clidriver().main(argv)
        out, err = _local.out.getvalue(), _local.err.getvalue()
    finally:
        _local.out = _local.err = None
    return {"rc": rc if rc is not None else 0, "stdout": out, "stderr": err}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/quit":
            ru = resource.getrusage(resource.RUSAGE_SELF)
            self._answer({"ok": True, "cpu": ru.ru_utime + ru.ru_stime})
            threading.Thread(target=self.server.shutdown).start()
            return
        try:
            res = _run(json.loads(body)["argv"])
        except BaseException as e:  # a bug here, not the CLI's answer
            res = {"rc": -1, "stdout": "", "stderr": "awscli_server: %r" % (e,)}
        self._answer(res)

    def _answer(self, obj):
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# Services the tests call: their models loaded before the first command, then the heap
# frozen (the garbage collector stops rescanning the big, immortal model data).
SERVICES = ("ec2", "elbv2", "autoscaling", "route53", "dynamodb", "sns", "cloudwatch", "iam",
            "ssm", "sts")


def _warm():
    _loader.load_data("endpoints")
    for name in SERVICES:
        _loader.load_service_model(name, "service-2")
    gc.collect()
    gc.freeze()


def main():
    portfile = sys.argv[1]
    _warm()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
