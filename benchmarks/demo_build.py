"""Times the demo build per stage on the configured database (SIYU_DATA_DIR / DATABASE_URL).

SIYU_DATA_DIR=/tmp/bench .venv/bin/python benchmarks/demo_build.py --contacts 200000
"""

from __future__ import annotations

import argparse
import os
import time


class StageTimer:
    """A siyu Progress that records how long each stage took."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []
        self._label: str | None = None
        self._since = 0.0

    def start(self, label: str, total: int | None) -> None:
        self.stop()
        self._label, self._since = label, time.perf_counter()

    def advance(self, n: int = 1) -> None:
        pass

    def stop(self) -> None:
        if self._label is not None:
            self.stages.append((self._label, time.perf_counter() - self._since))
            self._label = None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from siyu.demo import build_demo
    from siyu.tenancy.services import workspace_create

    call_command("migrate", interactive=False, verbosity=0)
    ws = workspace_create(slug=f"bench-demo-{int(time.time())}", name="鲜果时光 benchmark")
    timer = StageTimer()
    summary = build_demo(workspace=ws, contacts=args.contacts, seed=args.seed, progress=timer)
    timer.stop()
    print(f"{connection.vendor}: {summary}")
    for label, seconds in timer.stages:
        print(f"  {label:<40} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
