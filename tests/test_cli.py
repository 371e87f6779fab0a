"""The `siyu` command as a user runs it: a real process on a fresh data folder."""

import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

SIYU = [sys.executable, "-m", "siyu.cli"]


def _run(args, data_dir: Path, **kw):
    env = {**os.environ, "SIYU_DATA_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)  # each test gets its own embedded database
    return subprocess.run(
        [*SIYU, *args], env=env, capture_output=True, text=True, timeout=120, **kw
    )


def test_help_lists_every_command(tmp_path):
    out = _run(["--help"], tmp_path).stdout
    for command in ("demo", "init", "serve", "worker", "createuser", "apikey", "channel", "import"):
        assert command in out


def test_init_then_apikey_prints_a_working_key_once(tmp_path):
    init = _run(["init", "--slug", "fruit", "--name", "Fruit"], tmp_path)
    assert init.returncode == 0, init.stderr
    assert "Workspace fruit created" in init.stdout
    created = _run(["apikey", "create", "--workspace", "fruit", "--name", "pos"], tmp_path)
    assert created.returncode == 0, created.stderr
    raw = created.stdout.strip().splitlines()[-1]
    assert raw.startswith("sy_")
    listed = _run(["apikey", "list", "--workspace", "fruit"], tmp_path).stdout
    assert "pos" in listed and raw not in listed
    assert (tmp_path / "siyu.sqlite3").exists()


def test_channel_add_refuses_bad_settings_and_lists_secrets_masked(tmp_path):
    assert _run(["init", "--slug", "fruit"], tmp_path).returncode == 0
    add = ["channel", "add", "--workspace", "fruit", "--kind", "webhook", "--name", "CRM"]
    bad_json = _run([*add, "--settings", "{url:"], tmp_path)
    assert bad_json.returncode != 0 and "--settings is not valid JSON" in bad_json.stderr
    missing = _run([*add, "--settings", "{}"], tmp_path)
    assert missing.returncode != 0
    assert "settings: A webhook channel needs settings: url, secret." in missing.stderr
    settings = '{"url": "https://crm.example.com/hook", "secret": "s3cret-value"}'
    ok = _run([*add, "--settings", settings, "--rate", "5"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "(webhook) CRM added to fruit" in ok.stdout
    listed = _run(["channel", "list", "--workspace", "fruit"], tmp_path).stdout
    assert "CRM" in listed and "https://crm.example.com/hook" in listed
    assert "s3cret-value" not in listed and "5.0/s" in listed
    taken = _run([*add, "--settings", settings], tmp_path)
    assert taken.returncode != 0 and "CRM" in taken.stderr


def test_init_refuses_a_taken_slug_and_bad_time_zone(tmp_path):
    assert _run(["init", "--slug", "fruit"], tmp_path).returncode == 0
    again = _run(["init", "--slug", "fruit"], tmp_path)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = _run(["init", "--slug", "other", "--time-zone", "Mars/Olympus"], tmp_path)
    assert bad.returncode != 0 and "Unknown time zone 'Mars/Olympus'" in bad.stderr


def test_createuser_with_random_password_and_unknown_workspace(tmp_path):
    _run(["init", "--slug", "fruit"], tmp_path)
    ok = _run(
        ["createuser", "lin", "--workspace", "fruit", "--role", "analyst", "--random-password"],
        tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "User lin is analyst of fruit" in ok.stdout and "Password:" in ok.stdout
    missing = _run(
        ["createuser", "x", "--workspace", "nope", "--password", "longenough1"], tmp_path
    )
    assert missing.returncode != 0 and "No workspace 'nope'" in missing.stderr


def test_createuser_staff_with_unknown_staff_code_creates_nothing(tmp_path):
    _run(["init", "--slug", "fruit"], tmp_path)
    args = [
        "createuser",
        "dg",
        "--workspace",
        "fruit",
        "--role",
        "staff",
        "--staff-code",
        "E404",
        "--password",
        "longenough1",
    ]
    res = _run(args, tmp_path)
    assert res.returncode != 0 and "unknown staff code 'E404'" in res.stderr
    with sqlite3.connect(tmp_path / "siyu.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM auth_user WHERE username = 'dg'").fetchone() == (0,)


def test_worker_in_batch_mode_drains_the_queue_and_exits(tmp_path):
    res = _run(["worker", "--batch"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "No more tasks to run" in res.stdout + res.stderr


def test_demo_builds_a_populated_brand_and_prints_a_working_login(tmp_path):
    res = _run(["demo", "--no-serve", "--contacts", "800"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Demo brand built" in res.stdout and "4 sample segments" in res.stdout
    login = next(line for line in res.stdout.splitlines() if line.startswith("Console login:"))
    username, password = (part.strip() for part in login.removeprefix("Console login:").split("/"))
    assert username == "demo" and len(password) >= 10
    with sqlite3.connect(tmp_path / "siyu.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM audiences_segment").fetchone() == (4,)
        assert db.execute("SELECT count(*) FROM insights_contactscore").fetchone()[0] > 0
    again = _run(["demo", "--no-serve"], tmp_path)
    assert "The demo workspace exists already" in again.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _csrf(opener, url: str) -> str:
    html = opener.open(url, timeout=10).read().decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_the_served_demo_runs_what_the_console_hands_to_the_background(tmp_path):
    """One command, a working product: the layers recompute a user clicks finishes, because
    `siyu demo` runs a worker beside the server; and stopping the server stops the worker."""
    port = _free_port()
    env = {**os.environ, "SIYU_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    server = subprocess.Popen(
        [*SIYU, "demo", "--contacts", "300", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in server.stdout:
            lines.append(line)
            if line.startswith("Console:"):
                break
        output = "".join(lines)
        assert "Worker: process" in output, output
        worker_pid = int(re.search(r"Worker: process (\d+)", output).group(1))
        login = next(x for x in lines if x.startswith("Console login:"))
        username, password = (p.strip() for p in login.removeprefix("Console login:").split("/"))
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                token = _csrf(opener, base + "/login/")
                break
            except OSError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.3)

        def post(path: str, data: dict) -> str:
            body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **data}).encode()
            request = urllib.request.Request(base + path, data=body, headers={"Referer": base})  # noqa: S310
            with opener.open(request, timeout=30) as response:
                return response.url

        post("/login/", {"username": username, "password": password})
        token = _csrf(opener, base + "/audiences/layers/")
        landed = post("/audiences/layers/recompute/", {})
        task = urllib.parse.parse_qs(urllib.parse.urlsplit(landed).query)["task"][0]
        deadline = time.monotonic() + 90
        while True:
            with opener.open(f"{base}/audiences/layers/status/{task}/", timeout=10) as status:
                if status.headers.get("HX-Redirect"):
                    break
            assert time.monotonic() < deadline, "the recompute never finished"
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    # The worker went with the server.
    deadline = time.monotonic() + 30
    while (
        Path(f"/proc/{worker_pid}").exists()
        and "zombie" not in Path(f"/proc/{worker_pid}/status").read_text().lower()
    ):
        assert time.monotonic() < deadline, "the worker outlived the server"
        time.sleep(0.2)
