"""Local fake providers speaking real protocols on 127.0.0.1: a webhook receiver that checks
the HMAC signature and deduplicates by Idempotency-Key, an SMS gateway, and a minimal SMTP
server. Each runs in a thread on a random port."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def _start(server: socketserver.BaseServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


class FakeWebhook:
    """Answers with ``script`` in order (then ``default``): an int status or "hang" (sleeps past
    any client timeout). Counts requests per Idempotency-Key; ``unique`` is what a receiver that
    deduplicates would have delivered. ``after_delivery(unique)`` runs once a delivery is counted
    and before it is answered: a test can kill the sender there, between send and record."""

    def __init__(
        self, secret: str = "whsec", script: list[int | str] | None = None, default: int | str = 200
    ):
        self.secret = secret
        self.script = list(script or [])
        self.default = default
        self.keys: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.bad_signatures = 0
        self.after_delivery: Callable[[int], None] | None = None
        self.lock = threading.Lock()
        fake = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers.get("X-Siyu-Timestamp", "")
                expected = (
                    "sha256="
                    + hmac.new(
                        fake.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
                    ).hexdigest()
                )
                with fake.lock:
                    answer = fake.script.pop(0) if fake.script else fake.default
                    if not hmac.compare_digest(expected, self.headers.get("X-Siyu-Signature", "")):
                        fake.bad_signatures += 1
                        answer = 401
                    elif answer == 200:
                        fake.keys[self.headers["Idempotency-Key"]] += 1
                        fake.bodies.append(json.loads(body))
                        if fake.after_delivery is not None:
                            fake.after_delivery(len(fake.keys))
                if answer == "hang":
                    time.sleep(2)
                    answer = 200
                payload = json.dumps(
                    {"id": f"wh-{self.headers.get('Idempotency-Key')}"}
                    if answer == 200
                    else {"error": "boom"}
                )
                with contextlib.suppress(
                    BrokenPipeError, ConnectionResetError
                ):  # the client gave up
                    self.send_response(int(answer))
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        _start(self.server)

    @property
    def unique(self) -> int:
        return len(self.keys)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeSmsGateway:
    """A gateway with its own field names (mobile/content/out_id) that answers {"code": "0"}
    when it accepts, {"code": "1001"} for numbers listed in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()):
        self.received: list[dict] = []
        fake = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.received.append(payload)
                if payload.get("mobile") in refuse:
                    answer = {"code": "1001", "message": "blacklisted number"}
                else:
                    answer = {"code": "0", "msg_id": f"sms-{len(fake.received)}"}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"
        _start(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: str


@dataclass
class FakeSmtp:
    """Enough of RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
    Recipients in ``refuse`` get a permanent 550."""

    refuse: tuple[str, ...] = ()
    mails: list[Mail] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write((line + "\r\n").encode())

            def handle(self) -> None:
                self.reply("220 fake.smtp ESMTP")
                sender, recipients = "", []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    line = raw.decode().rstrip("\r\n")
                    verb = line[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 fake.smtp")
                    elif verb == "MAIL":
                        sender, recipients = line.split(":", 1)[1].strip(" <>"), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpt = line.split(":", 1)[1].strip(" <>")
                        if rcpt in fake.refuse:
                            self.reply("550 no such mailbox")
                        else:
                            recipients.append(rcpt)
                            self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(chunk.decode())
                        fake.mails.append(Mail(sender, recipients, "".join(lines)))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        _start(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
