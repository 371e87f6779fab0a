"""The kill test: a real sender process is SIGKILLed in the middle of a 3,000-message send, at
the worst moment — the receiver has taken a message and the worker has not yet recorded it.
After a restart (two workers at once) every message reaches the receiver, whose dedupe by
Idempotency-Key counts each exactly once, and the outbox holds each row sent exactly once.

The messages sent since the worker last recorded its outcomes (they are recorded in chunks, one
commit per chunk) are sent again after its lease, with the same Idempotency-Key: the receiver
sees each twice and keeps it once. At most one chunk — here at most the claimed batch of 50 —
is repeated; the rest of the claimed batch is simply claimed again."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.messaging.fakes import FakeWebhook

N = 3000
KILL_AT = 1017  # mid-batch: the worker claims 50 at a time
SCRIPT = Path(__file__).with_name("outbox_worker.py")


@pytest.fixture
def crash_env(tmp_path):
    """Environment for sender processes: a file SQLite in tmp, or a scratch PostgreSQL database
    next to the test database when the suite runs on PostgreSQL."""
    env = {
        **os.environ,
        "SIYU_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    env.pop("DATABASE_URL", None)
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        yield env
        return
    name = f"{db['NAME'].removeprefix('test_')}_crash"
    admin = {
        "host": db["HOST"],
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{admin['host']}:{admin['port']}/{name}"
    yield env
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def worker(env, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=env, **kw)


def test_a_worker_killed_mid_send_loses_and_duplicates_nothing(crash_env):
    receiver = FakeWebhook(secret="crash-secret")
    try:
        seeded = subprocess.run(
            [sys.executable, str(SCRIPT), "seed", str(N), receiver.url, receiver.secret],
            env=crash_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert json.loads(seeded.stdout) == {"queued": N}

        first = worker(crash_env, "run", "first")

        def kill_before_the_answer(delivered: int) -> None:
            if delivered == KILL_AT:
                first.send_signal(signal.SIGKILL)
                first.wait()

        receiver.after_delivery = kill_before_the_answer
        assert first.wait(timeout=60) == -signal.SIGKILL
        receiver.after_delivery = None
        at_kill = receiver.unique
        assert at_kill == KILL_AT

        restarted = [worker(crash_env, "run", name) for name in ("second", "third")]
        for process in restarted:
            assert process.wait(timeout=60) == 0

        outbox = json.loads(
            subprocess.run(
                [sys.executable, str(SCRIPT), "report"],
                env=crash_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        )
    finally:
        receiver.close()

    assert outbox["by_status"] == {"sent": N}
    assert receiver.unique == N
    assert set(receiver.keys) == set(outbox["sent_keys"])
    assert receiver.bad_signatures == 0
    resent = [key for key, count in receiver.keys.items() if count > 1]
    # Those sent but not yet recorded when the worker died: its last chunk, each sent twice.
    assert 1 <= len(resent) <= 50
    assert {receiver.keys[key] for key in resent} == {2}
    assert 1 <= outbox["attempted_twice"] <= 50  # the killed worker's claimed batch, no more
    print(
        f"killed after {at_kill} of {N}; resent {len(resent)}, reclaimed {outbox['attempted_twice']}"
    )
