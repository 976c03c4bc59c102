"""An HTTP/1.1 client on a bare socket, for what curl will not do: announce a body and never
send it, stream an endless chunked body, trickle a body byte by byte while holding the
connection. Prints the answer's status line, then its body.

raw_http.py PORT MODE DIR [HEADER: VALUE]...
  announce N   headers with Content-Length: N, no body
  chunked N    a chunked body of N bytes in 64 KiB chunks (stops early if the server answers)
  trickle N    Content-Length: N; one byte, then DIR/holding is created; a byte every 10 ms
               (at most N-1 in all) until DIR/release exists, then the rest
"""
import os
import socket
import sys
import time


def read_answer(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return lines[0], body.decode("utf-8", "replace")


def main():
    port, mode, n, outdir = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    headers = sys.argv[5:]
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = ["POST / HTTP/1.1", "Host: 127.0.0.1:%d" % port] + headers
    if mode == "chunked":
        head.append("Transfer-Encoding: chunked")
    else:
        head.append("Content-Length: %d" % n)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    if mode == "chunked":
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < n:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: read its answer
    elif mode == "trickle":
        sock.sendall(b"x")
        sent = 1
        open(os.path.join(outdir, "holding"), "w").close()
        release = os.path.join(outdir, "release")
        while not os.path.exists(release):
            if sent < n - 1:
                sock.sendall(b"x")
                sent += 1
            time.sleep(0.01)
        sock.sendall(b"x" * (n - sent))
    try:
        status, body = read_answer(sock)
    except socket.timeout:
        status, body = "timeout", ""
    print(status)
    print(body)


main()
