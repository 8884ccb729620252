#!/usr/bin/env python3
"""Smoke test for the WebSocket transport, standard library only.

    python3 deploy/ws-subscribe.py [--count N] [--timeout S] [--cafile PEM]
                                   [--header 'Name: value' ...] URL

URL is ws://HOST[:PORT]/TOPICS/ws or wss://… (through nginx). Prints each text
frame (one JSON event) on its own line, answers pings, and exits after N "message"
events (default 1): status 0, or 1 on timeout, a refused handshake or a close.
"""

import argparse
import base64
import os
import socket
import ssl
import struct
import sys
import time
from urllib.parse import urlsplit


def handshake(sock, host, path, headers):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed during the handshake")
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 101 " not in status + " ":
        raise ConnectionError(f"handshake refused: {status}")
    return rest


class Frames:
    def __init__(self, sock, buffered):
        self.sock = sock
        self.buf = buffered

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def next(self):
        """Returns (opcode, payload) of the next complete message."""
        opcode, parts = None, []
        while True:
            b0, b1 = self._read(2)
            fin, op = b0 & 0x80, b0 & 0x0F
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(length)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            if op >= 0x8:  # control frames arrive whole, also between fragments
                return op, payload
            if op != 0:
                opcode = op
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def send(self, opcode, payload=b""):
        mask = os.urandom(4)
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(data)]) + mask + data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--cafile")
    ap.add_argument("--header", action="append", default=[])
    args = ap.parse_args()

    url = urlsplit(args.url)
    secure = url.scheme == "wss"
    port = url.port or (443 if secure else 80)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    deadline = time.monotonic() + args.timeout
    try:
        sock = socket.create_connection((url.hostname, port), timeout=args.timeout)
        if secure:
            ctx = ssl.create_default_context(cafile=args.cafile)
            ctx.set_alpn_protocols(["http/1.1"])
            sock = ctx.wrap_socket(sock, server_hostname=url.hostname)
        frames = Frames(sock, handshake(sock, url.netloc, path, args.header))
        seen = 0
        while seen < args.count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            op, payload = frames.next()
            if op == 0x9:
                frames.send(0xA, payload)
            elif op == 0x8:
                raise ConnectionError("closed by the server")
            elif op == 0x1:
                text = payload.decode()
                print(text, flush=True)
                if '"event":"message"' in text:
                    seen += 1
        frames.send(0x8, struct.pack("!H", 1000))
        sock.close()
    except (TimeoutError, socket.timeout):
        print(f"ws-subscribe: timed out after {args.timeout:g} s", file=sys.stderr)
        return 1
    except (OSError, ConnectionError) as e:
        print(f"ws-subscribe: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
