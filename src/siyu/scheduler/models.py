"""Periodic jobs the workers run: one row per job, its next due time advanced in the same
transaction that enqueues it, so several workers never enqueue a run twice."""

from __future__ import annotations

from django.db import models


class PeriodicJob(models.Model):
    name = models.CharField(max_length=100, unique=True)
    every_seconds = models.PositiveIntegerField()
    next_run_at = models.DateTimeField()
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name
