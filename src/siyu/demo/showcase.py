"""After the data: what an operations team would already have set up, so that every console
page of the demo opens on real numbers — daily rollups backfilled, layers computed, the CLV
model fitted, and a few segments the fruit-chain case talks about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import connection

from siyu.analytics import services as analytics_services
from siyu.audiences import services as audience_services
from siyu.audiences.layers_services import layers_refresh
from siyu.audiences.models import SegmentSchedule
from siyu.insights import services as insight_services
from siyu.messaging import services as messaging_services
from siyu.messaging.library_services import template_publish, template_save
from siyu.messaging.models import ChannelKind, TemplateScene
from siyu.progress import NoProgress, Progress
from siyu.tenancy.models import Workspace

#: Segments an operator of the fruit chain would save first (name, rule).
SEGMENTS: tuple[tuple[str, dict], ...] = (
    (
        "车厘子季高价值客 (cherry lovers)",
        {
            "all": [
                {"orders": {"sku": ["FF-CHERRY", "FF-GIFT-CHERRY"], "count": {"gte": 1}}},
                {"orders": {"sum": {"gte": 500}}},
            ]
        },
    ),
    (
        "复购客 30 天未购 (repeat buyers gone quiet)",
        {
            "all": [
                {"orders": {"count": {"gte": 2}}},
                {"orders": {"last_at": {"older_than_days": 30}}},
            ]
        },
    ),
    (
        "流失风险高价值 (valuable, at risk)",
        {
            "all": [
                {"score": {"churn_band": ["high", "medium"]}},
                {"orders": {"sum": {"gte": 300}}},
            ]
        },
    ),
    (
        "企微好友未下单 (WeCom friends without an order)",
        {
            "all": [
                {"has_identity": "wecom_external_userid"},
                {"orders": {"count": {"eq": 0}}},
            ]
        },
    ),
)


#: The content HQ would have published first (name, scene, body); console channel, so a journey
#: built in the demo really queues and "sends" (into the outbox) without any gateway.
TEMPLATES: tuple[tuple[str, str, str], ...] = (
    (
        "新客欢迎",
        TemplateScene.WELCOME,
        "{{nickname}}，欢迎加入鲜果时光！到店出示会员码，首单立减 10 元。{{store}} 等你来。",
    ),
    (
        "周二会员日",
        TemplateScene.MEMBER_DAY,
        "{{nickname}}，今天周二会员日：全场水果 9 折，会员再领券 {{coupon}}。",
    ),
    (
        "好久不见",
        TemplateScene.WINBACK,
        "{{nickname}}，好久没见啦，车厘子季到了，回来尝尝？{{link}}",
    ),
)


@dataclass(frozen=True)
class Showcase:
    segments: int
    fit_status: str
    layered_contacts: int


def analyze_tables() -> None:
    """Fresh statistics after a bulk load: without them PostgreSQL plans segment queries as if
    the tables were empty and a 2-second query can take minutes. On PostgreSQL, outside a
    transaction, the tables are vacuumed too: a server without autovacuum would otherwise leave
    tens of millions of fresh rows with no visibility map (no index-only scans) and their hint
    bits to be written by the first queries that read them (the daily layers refresh of the 1M
    demo: 28.6 s unvacuumed, 21.3 s vacuumed)."""
    vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")


def prepare_showcase(
    *, workspace: Workspace, today: date | None = None, progress: Progress | None = None
) -> Showcase:
    progress = progress or NoProgress()
    progress.start("Statistics, rollups, layers, CLV model, segments and content", 5)
    analyze_tables()
    progress.advance()
    # The dashboard and the metrics pages read the daily rollups.
    analytics_services.rollups_backfill(workspace=workspace)
    progress.advance()
    layered = layers_refresh(workspace=workspace)
    progress.advance()
    fit = insight_services.fit_workspace(workspace=workspace, today=today)
    progress.advance()
    for name, rule in SEGMENTS:
        audience_services.segment_save(
            workspace=workspace, name=name, rule=rule, refresh_every=SegmentSchedule.DAILY
        )
    messaging_services.channel_create(
        workspace=workspace, kind=ChannelKind.CONSOLE, name="控制台（演示）", settings={}
    )
    for name, scene, body in TEMPLATES:
        template_publish(
            workspace=workspace,
            template=template_save(
                workspace=workspace,
                name=name,
                channel_kind=ChannelKind.CONSOLE,
                scene=scene,
                body=body,
            ),
        )
    progress.advance()
    return Showcase(
        segments=len(SEGMENTS), fit_status=fit.status, layered_contacts=layered.contacts
    )
