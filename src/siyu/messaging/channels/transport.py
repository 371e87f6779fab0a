"""One JSON POST over urllib, classifying the outcome the way every HTTP channel needs: 2xx
sent, 429/5xx/timeout/connection error worth a retry, any other 4xx a permanent failure."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    error: str = ""  # set when there was no answer (timeout, refused connection)

    @property
    def retryable(self) -> bool:
        return not self.status or self.status == 429 or self.status >= 500

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def describe(self) -> str:
        if self.error:
            return self.error
        return f"HTTP {self.status}: {self.body[:200].decode(errors='replace')}"


def post_json(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> HttpAnswer:
    if not url.startswith(("http://", "https://")):
        return HttpAnswer(0, b"", f"refused url {url!r}: only http(s) is allowed")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return HttpAnswer(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, exc.read())
    except TimeoutError:
        return HttpAnswer(0, b"", f"timeout after {timeout:g} s")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            return HttpAnswer(0, b"", f"timeout after {timeout:g} s")
        return HttpAnswer(0, b"", f"connection error: {exc.reason}")
    except OSError as exc:
        return HttpAnswer(0, b"", f"connection error: {exc}")
