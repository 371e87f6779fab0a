"""A journey's definition: the JSON an operator builds in the console (or imports), checked
whole when it is saved so that a mistake is a form error naming its place (``steps.2.rule.all.0``)
and never a stuck enrollment at 08:00.

    {
      "trigger": {"type": "event", "event": "order_paid"}
               | {"type": "schedule", "cron": "0 10 * * 2", "segment_id": 7}
               | {"type": "manual", "segment_id": 7},
      "entry_rule": {...audience rule...} | null,      # who may enter (docs/segment-rules.md)
      "reentry": "once" | "after_exit" | "always",
      "goal": {"type": "order_paid", "within_days": 7} | {"type": "event", "event": "coupon_redeem", "within_days": 3} | null,
      "holdout_percent": 0..50,                        # entrants kept out, for measurement
      "caps": {"daily": 1, "weekly": 3} | null,        # per-journey frequency caps
      "cost_per_message": "0.05",                      # for ROI
      "steps": [{"key": "welcome", "type": "send", ...}, ...]
    }

Steps run in list order unless one names its ``next`` ("exit" ends the walk); a branch names
``yes``/``no``, a split names each arm's ``next``. Step types: send, webhook, wait, branch, tag,
task, split, exit (docs/journeys.md has every field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from siyu.audiences import rules
from siyu.audiences.models import Segment, Tag
from siyu.errors import ValidationFailed
from siyu.events.models import EventType
from siyu.inbox import services as inbox_services
from siyu.journeys import cron
from siyu.messaging import rendering
from siyu.messaging.models import ChannelConfig, ChannelKind, MessageTemplate
from siyu.tenancy.models import Workspace

MAX_STEPS = 50
MAX_WAIT_DAYS = 365
MAX_HOLDOUT = 50
EXIT = "exit"
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

#: Event triggers: the name operators pick → what enrolls a contact.
TRIGGER_EVENTS = (
    "contact_added",
    "group_joined",
    "group_left",
    "order_paid",
    "coupon_claimed",
    "birthday",
    "segment_entered",
    "segment_exited",
)
STEP_TYPES = ("send", "webhook", "wait", "branch", "tag", "task", "split", "exit")
REENTRY = ("once", "after_exit", "always")
HOLDOUT_ARM = "holdout"


def _fail(message: str, path: str) -> ValidationFailed:
    return ValidationFailed("invalid_journey", message, path=path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _keys(spec: Any, allowed: set[str], required: set[str], path: str, what: str) -> dict:
    if not isinstance(spec, dict):
        raise _fail(f"{what} must be an object.", path)
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise _fail(
            f"Unknown field {unknown[0]!r} in {what}; allowed: {', '.join(sorted(allowed))}.",
            f"{path}.{unknown[0]}" if path else unknown[0],
        )
    for key in sorted(required):
        if key not in spec:
            raise _fail(f"{what} needs {key!r}.", f"{path}.{key}" if path else key)
    return spec


def _ref(model, workspace: Workspace, value: Any, path: str, what: str):
    if not _is_int(value):
        raise _fail(f"{what} must be an id (a whole number).", path)
    obj = model.objects.filter(workspace=workspace, id=value).first()
    if obj is None:
        raise _fail(f"{what} {value} does not exist in this workspace.", path)
    return obj


def wait_duration(spec: dict) -> timedelta:
    return timedelta(
        days=spec.get("days", 0), hours=spec.get("hours", 0), minutes=spec.get("minutes", 0)
    )


def parse_time(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


@dataclass
class _Checker:
    workspace: Workspace
    now: datetime

    def rule(self, rule: Any, path: str) -> None:
        try:
            rules.validate_rule(workspace=self.workspace, rule=rule, now=self.now)
        except ValidationFailed as exc:
            raise _fail(exc.message, path + (f".{exc.path}" if exc.path else "")) from exc

    def trigger(self, spec: Any) -> None:
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "event":
            _keys(
                spec,
                {"type", "event", "segment_id", "at"},
                {"event"},
                "trigger",
                "An event trigger",
            )
            if spec["event"] not in TRIGGER_EVENTS:
                raise _fail(
                    f"Unknown trigger event {spec['event']!r}; use one of {', '.join(TRIGGER_EVENTS)}.",
                    "trigger.event",
                )
            if spec["event"].startswith("segment_"):
                if "segment_id" not in spec:
                    raise _fail("A segment trigger needs segment_id.", "trigger.segment_id")
                _ref(Segment, self.workspace, spec["segment_id"], "trigger.segment_id", "Segment")
            elif "segment_id" in spec:
                raise _fail("Only segment triggers take segment_id.", "trigger.segment_id")
            if "at" in spec and (spec["event"] != "birthday" or not _TIME.match(str(spec["at"]))):
                raise _fail(
                    "'at' is a time of day HH:MM, for birthday triggers only.", "trigger.at"
                )
        elif kind == "schedule":
            _keys(spec, {"type", "cron", "segment_id"}, {"cron"}, "trigger", "A schedule trigger")
            if not isinstance(spec["cron"], str):
                raise _fail("cron must be text like '0 8 * * *'.", "trigger.cron")
            cron.parse(spec["cron"], path="trigger.cron")
            if "segment_id" in spec:
                _ref(Segment, self.workspace, spec["segment_id"], "trigger.segment_id", "Segment")
        elif kind == "manual":
            _keys(spec, {"type", "segment_id"}, set(), "trigger", "A manual trigger")
            if "segment_id" in spec:
                _ref(Segment, self.workspace, spec["segment_id"], "trigger.segment_id", "Segment")
        else:
            raise _fail("trigger.type must be event, schedule or manual.", "trigger.type")

    def goal(self, spec: Any) -> None:
        _keys(spec, {"type", "event", "within_days"}, {"type", "within_days"}, "goal", "The goal")
        if spec["type"] == "event":
            if spec.get("event") not in EventType.values:
                raise _fail(f"Unknown goal event {spec.get('event')!r}.", "goal.event")
        elif spec["type"] != "order_paid":
            raise _fail("goal.type must be order_paid or event.", "goal.type")
        days = spec["within_days"]
        if not _is_int(days) or not 1 <= days <= MAX_WAIT_DAYS:
            raise _fail(
                f"within_days must be a whole number from 1 to {MAX_WAIT_DAYS}.", "goal.within_days"
            )

    def template(self, step: dict, path: str, *, webhook: bool) -> None:
        channel = _ref(
            ChannelConfig, self.workspace, step.get("channel_id"), f"{path}.channel_id", "Channel"
        )
        template = _ref(
            MessageTemplate,
            self.workspace,
            step.get("template_id"),
            f"{path}.template_id",
            "Template",
        )
        if webhook and channel.kind != ChannelKind.WEBHOOK:
            raise _fail(f"Channel {channel.name!r} is not a webhook channel.", f"{path}.channel_id")
        if not webhook and channel.kind == ChannelKind.WEBHOOK:
            raise _fail(
                f"Channel {channel.name!r} is a webhook: use a webhook step.", f"{path}.channel_id"
            )
        if template.channel_kind != channel.kind:
            raise _fail(
                f"Template {template.name!r} is for {template.channel_kind}, channel {channel.name!r} is {channel.kind}.",
                f"{path}.template_id",
            )
        given = step.get("variables", {})
        if not isinstance(given, dict):
            raise _fail("variables must map names to text.", f"{path}.variables")
        product = template.product.name if template.product_id else None
        try:
            rendering.constants_for(
                template.subject, template.body, product_name=product, given=given
            )
        except ValidationFailed as exc:
            raise _fail(exc.message, f"{path}.{exc.path}" if exc.path else path) from exc

    def step(self, step: Any, path: str) -> list[tuple[str, str]]:
        """Checks one step; returns its outgoing edges as (field path, target key)."""
        kind = step.get("type") if isinstance(step, dict) else None
        if kind not in STEP_TYPES:
            raise _fail(f"A step's type must be one of {', '.join(STEP_TYPES)}.", f"{path}.type")
        common = {"key", "type", "next", "name"}
        fields = {
            "send": {"channel_id", "template_id", "variables"},
            "webhook": {"channel_id", "template_id", "variables"},
            "wait": {"duration", "until"},
            "branch": {"rule", "yes", "no"},
            "tag": {"action", "tag_id"},
            "task": {"kind", "title", "note", "due_in_hours"},
            "split": {"arms"},
            "exit": set(),
        }[kind]
        required = {
            "send": {"channel_id", "template_id"},
            "webhook": {"channel_id", "template_id"},
            "branch": {"rule", "yes", "no"},
            "tag": {"action", "tag_id"},
            "task": {"kind", "title", "due_in_hours"},
            "split": {"arms"},
        }.get(kind, set())
        _keys(step, common | fields, required | {"key"}, path, f"A {kind} step")
        edges: list[tuple[str, str]] = []
        if kind in ("send", "webhook"):
            self.template(step, path, webhook=kind == "webhook")
        elif kind == "wait":
            self.wait(step, path)
        elif kind == "branch":
            if "next" in step:
                raise _fail("A branch goes on by yes/no, not next.", f"{path}.next")
            self.rule(step["rule"], f"{path}.rule")
            edges += [(f"{path}.yes", step["yes"]), (f"{path}.no", step["no"])]
        elif kind == "tag":
            if step["action"] not in ("add", "remove"):
                raise _fail("action must be add or remove.", f"{path}.action")
            _ref(Tag, self.workspace, step["tag_id"], f"{path}.tag_id", "Tag")
        elif kind == "task":
            try:
                inbox_services.task_text_check(
                    kind=step["kind"], title=step["title"], note=step.get("note", "")
                )
            except ValidationFailed as exc:
                raise _fail(exc.message, f"{path}.{exc.path or 'title'}") from exc
            hours = step["due_in_hours"]
            if not _is_int(hours) or not 0 <= hours <= MAX_WAIT_DAYS * 24:
                raise _fail(
                    "due_in_hours must be a whole number of hours ≥ 0.", f"{path}.due_in_hours"
                )
        elif kind == "split":
            if "next" in step:
                raise _fail("A split goes on by each arm's next.", f"{path}.next")
            edges += self.arms(step["arms"], f"{path}.arms")
        if kind == "exit" and "next" in step:
            raise _fail("An exit step has no next.", f"{path}.next")
        if "next" in step:
            edges.append((f"{path}.next", step["next"]))
        return edges

    def wait(self, step: dict, path: str) -> None:
        if ("duration" in step) == ("until" in step):
            raise _fail("A wait needs either a duration or an until, not both.", path)
        if "duration" in step:
            spec = _keys(
                step["duration"],
                {"days", "hours", "minutes"},
                set(),
                f"{path}.duration",
                "A duration",
            )
            for unit, value in spec.items():
                if not _is_int(value) or value < 0:
                    raise _fail(f"{unit} must be a whole number ≥ 0.", f"{path}.duration.{unit}")
            length = wait_duration(spec)
            if length <= timedelta(0):
                raise _fail(
                    "A wait of zero does nothing; give days, hours or minutes.", f"{path}.duration"
                )
            if length > timedelta(days=MAX_WAIT_DAYS):
                raise _fail(f"A wait is at most {MAX_WAIT_DAYS} days.", f"{path}.duration")
        else:
            spec = _keys(step["until"], {"time", "weekdays"}, {"time"}, f"{path}.until", "An until")
            if not isinstance(spec["time"], str) or not _TIME.match(spec["time"]):
                raise _fail("until.time is a time of day HH:MM.", f"{path}.until.time")
            days = spec.get("weekdays", [])
            if not isinstance(days, list) or not all(_is_int(d) and 1 <= d <= 7 for d in days):
                raise _fail(
                    "until.weekdays lists days 1 (Monday) to 7 (Sunday).", f"{path}.until.weekdays"
                )

    def arms(self, arms: Any, path: str) -> list[tuple[str, str]]:
        if not isinstance(arms, list) or not 2 <= len(arms) <= 5:
            raise _fail("A split has 2 to 5 arms.", path)
        edges, total, names = [], 0, set()
        for i, arm in enumerate(arms):
            _keys(arm, {"key", "weight", "next"}, {"key", "weight"}, f"{path}.{i}", "An arm")
            if not isinstance(arm["key"], str) or not _KEY.match(arm["key"]) or arm["key"] in names:
                raise _fail(
                    "Each arm needs a distinct key (letters, digits, _ or -).", f"{path}.{i}.key"
                )
            names.add(arm["key"])
            if not _is_int(arm["weight"]) or not 1 <= arm["weight"] <= 99:
                raise _fail(
                    "An arm's weight is a whole percentage from 1 to 99.", f"{path}.{i}.weight"
                )
            total += arm["weight"]
            if arm["key"] == HOLDOUT_ARM:
                if "next" in arm:
                    raise _fail(
                        "The holdout arm receives nothing: it has no next.", f"{path}.{i}.next"
                    )
            else:
                edges.append((f"{path}.{i}.next", arm.get("next", EXIT)))
        if total != 100:
            raise _fail(f"The arms' weights must add up to 100, not {total}.", path)
        return edges


def next_in_list(steps: list[dict], index: int) -> str:
    """Where a step without ``next`` goes: the following step, or the end."""
    return steps[index + 1]["key"] if index + 1 < len(steps) else EXIT


def outgoing(steps: list[dict], index: int) -> list[str]:
    step = steps[index]
    kind = step["type"]
    if kind == "exit":
        return []
    if kind == "branch":
        return [step["yes"], step["no"]]
    if kind == "split":
        return [arm.get("next", EXIT) for arm in step["arms"] if arm["key"] != HOLDOUT_ARM]
    return [step.get("next", next_in_list(steps, index))]


def validate(*, workspace: Workspace, definition: Any, now: datetime) -> dict:
    """The definition as stored, or ValidationFailed with the path of the first problem."""
    top = {
        "trigger",
        "entry_rule",
        "reentry",
        "goal",
        "holdout_percent",
        "caps",
        "cost_per_message",
        "steps",
    }
    _keys(definition, top, {"trigger", "steps"}, "", "A journey")
    checker = _Checker(workspace=workspace, now=now)
    checker.trigger(definition["trigger"])
    if definition.get("entry_rule") is not None:
        checker.rule(definition["entry_rule"], "entry_rule")
    if definition.get("reentry", "once") not in REENTRY:
        raise _fail(f"reentry must be one of {', '.join(REENTRY)}.", "reentry")
    if definition.get("goal") is not None:
        checker.goal(definition["goal"])
    holdout = definition.get("holdout_percent", 0)
    if not _is_int(holdout) or not 0 <= holdout <= MAX_HOLDOUT:
        raise _fail(
            f"holdout_percent must be a whole number from 0 to {MAX_HOLDOUT}.", "holdout_percent"
        )
    caps = definition.get("caps")
    if caps is not None:
        _keys(caps, {"daily", "weekly"}, set(), "caps", "caps")
        for name, value in caps.items():
            if value is not None and (not _is_int(value) or value < 0):
                raise _fail("A cap is a whole number ≥ 0.", f"caps.{name}")
    try:
        cost = Decimal(str(definition.get("cost_per_message", "0")))
    except InvalidOperation:
        cost = Decimal(-1)
    if not cost.is_finite() or cost < 0:
        raise _fail('cost_per_message is an amount ≥ 0, like "0.05".', "cost_per_message")

    steps = definition["steps"]
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise _fail(f"A journey has 1 to {MAX_STEPS} steps.", "steps")
    keys: dict[str, int] = {}
    for i, step in enumerate(steps):
        key = step.get("key") if isinstance(step, dict) else None
        if not isinstance(key, str) or not _KEY.match(key) or key == EXIT:
            raise _fail(
                "Each step needs a key: 1–64 letters, digits, _ or - (not 'exit').",
                f"steps.{i}.key",
            )
        if key in keys:
            raise _fail(f"Step key {key!r} is used twice.", f"steps.{i}.key")
        keys[key] = i
    for i, step in enumerate(steps):
        for path, target in checker.step(step, f"steps.{i}"):
            if target != EXIT and target not in keys:
                raise _fail(f"No step has the key {target!r}.", path)
    _check_graph(steps, keys)
    return definition


def _check_graph(steps: list[dict], keys: dict[str, int]) -> None:
    """No cycles (a walk must end) and no step that can never be reached."""
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done

    def visit(index: int, trail: list[str]) -> None:
        state[index] = 1
        for target in outgoing(steps, index):
            if target == EXIT:
                continue
            j = keys[target]
            if state.get(j) == 1:
                loop = " → ".join([*trail[trail.index(target) :], target])
                raise _fail(
                    f"The steps form a cycle ({loop}); a journey must always end.", f"steps.{j}"
                )
            if j not in state:
                visit(j, [*trail, target])
        state[index] = 2

    visit(0, [steps[0]["key"]])
    for key, index in keys.items():
        if index not in state:
            raise _fail(f"Step {key!r} is never reached from the first step.", f"steps.{index}")


def step_by_key(definition: dict) -> dict[str, tuple[int, dict]]:
    return {step["key"]: (i, step) for i, step in enumerate(definition["steps"])}
