"""The journey kill test: a 10,000-contact journey (launch → tag → webhook step) is walked and sent by
a real worker process that is SIGKILLed midway — some enrollments not yet moved, some messages
in flight. Two restarted workers finish it: every contact gets exactly one message, the
receiver sees every key (a repeat of the dead worker's unrecorded chunk carries the same key
and is dropped there), and every enrollment ends completed."""

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.messaging.fakes import FakeWebhook
from tests.messaging.test_crash import crash_env  # noqa: F401  (the scratch-database fixture)

N = 10_000
KILL_AT = 1_517
SCRIPT = Path(__file__).with_name("journey_worker.py")


def _run(env, *args: str, timeout: int = 300) -> dict:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=True
    )
    return json.loads(done.stdout)


def test_a_worker_killed_mid_journey_sends_every_message_exactly_once(crash_env):  # noqa: F811
    receiver = FakeWebhook(secret="crash-secret")
    try:
        assert _run(crash_env, "seed", str(N), receiver.url, receiver.secret) == {"enrolled": N}
        first = subprocess.Popen([sys.executable, str(SCRIPT), "run", "first"], env=crash_env)

        def kill(delivered: int) -> None:
            if delivered == KILL_AT:
                first.send_signal(signal.SIGKILL)
                first.wait()

        receiver.after_delivery = kill
        assert first.wait(timeout=300) == -signal.SIGKILL
        receiver.after_delivery = None
        at_kill = _run(crash_env, "report")
        assert at_kill["enrollments"].get("active", 0) > 0  # killed mid-walk, not after it

        restarted = [
            subprocess.Popen([sys.executable, str(SCRIPT), "run", name], env=crash_env) for name in ("second", "third")
        ]
        for process in restarted:
            assert process.wait(timeout=600) == 0
        final = _run(crash_env, "report")
    finally:
        receiver.close()

    assert final["enrollments"] == {"completed": N}
    assert final["outbox"] == {"sent": N}
    assert final["contacts_with_two_rows"] == 0
    assert receiver.unique == N
    assert set(receiver.keys) == set(final["sent_keys"])
    assert len([k for k, n in receiver.keys.items() if n > 1]) <= 50
