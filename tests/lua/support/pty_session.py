#!/usr/bin/python3
"""Drives a program under a pseudo-terminal for the REPL tests: reads a JSON script from
the file named by its argument, or stdin ({"argv": [...], "env": {...}, "steps": [...]}),
and prints a JSON report.

Steps: {"send": "text"} writes keystrokes (\\t TAB, \\x03 Ctrl-C, \\x04 Ctrl-D);
{"expect": "regex", "timeout": s} waits until the screen text (escape sequences and
carriage returns removed) after the previous match matches; {"sleep": s};
{"exit": true, "timeout": s} waits for the program to end. The report: ok, failed (the
index of the failing step, 1-based), steps (per step: matched, seconds, text), screen
(everything seen, cleaned), raw, code (the exit status, or null)."""
import json
import os
import pty
import re
import select
import signal
import sys
import time

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]|[\x07\x08]")


def clean(raw):
    return ESCAPES.sub("", raw.decode("utf-8", "replace")).replace("\r", "")


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as f:
            spec = json.load(f)
    else:
        spec = json.load(sys.stdin)
    env = dict(os.environ)
    env.update(spec.get("env", {}))
    env.setdefault("TERM", "xterm")
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.clear()
        os.environ.update(env)
        try:
            os.execvp(spec["argv"][0], spec["argv"])
        finally:
            os._exit(127)
    raw = b""
    pos = 0  # where the next expect starts looking, in the cleaned text
    code = None
    report = {"ok": True, "failed": None, "steps": []}

    def pump(deadline):
        nonlocal raw
        wait = max(0.0, deadline - time.monotonic())
        r, _, _ = select.select([fd], [], [], min(wait, 0.05))
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                return False
            raw += data
        return True

    def reap(block):
        nonlocal code
        if code is not None:
            return True
        p, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if p == pid:
            code = os.waitstatus_to_exitcode(status)
            return True
        return False

    for i, step in enumerate(spec["steps"], 1):
        start = time.monotonic()
        result = {"matched": True}
        if "send" in step:
            os.write(fd, step["send"].encode())
        elif "sleep" in step:
            end = start + step["sleep"]
            while time.monotonic() < end and pump(end):
                pass
        elif "expect" in step:
            pattern = re.compile(step["expect"])
            deadline = start + step.get("timeout", 10)
            m = None
            while True:
                m = pattern.search(clean(raw), pos)
                if m or time.monotonic() >= deadline:
                    break
                if not pump(deadline):
                    m = pattern.search(clean(raw), pos)
                    break
            if m:
                result["text"] = clean(raw)[pos:m.end()]
                pos = m.end()
            else:
                result["matched"] = False
                result["text"] = clean(raw)[pos:]
        elif "exit" in step:
            deadline = start + step.get("timeout", 10)
            while not reap(False) and time.monotonic() < deadline:
                pump(deadline)
            result["matched"] = code is not None
        result["seconds"] = round(time.monotonic() - start, 3)
        report["steps"].append(result)
        if not result["matched"]:
            report["ok"] = False
            report["failed"] = i
            break
    if code is None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reap(True)
    end = time.monotonic() + 0.2
    while pump(end) and time.monotonic() < end:
        pass
    os.close(fd)
    report["code"] = code
    report["screen"] = clean(raw)
    report["raw"] = raw.decode("utf-8", "replace")
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
