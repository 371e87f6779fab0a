"""The scheduler loop inside `siyu worker`: a daemon thread that ticks every few seconds."""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections

from siyu.scheduler import services

TICK_SECONDS = 15
logger = logging.getLogger(__name__)


def run_scheduler_once() -> list[str]:
    try:
        return services.tick()
    finally:
        close_old_connections()


def _loop(stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            run_scheduler_once()
        except Exception:  # a failed tick must not kill the worker; the next tick retries
            logger.exception("scheduler tick failed")
        stop.wait(TICK_SECONDS)


def start_scheduler_thread() -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=_loop, args=(stop,), name="siyu-scheduler", daemon=True).start()
    return stop
