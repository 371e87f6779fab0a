"""Every console page a user can reach from the home page opens on the demo brand, as built by
``siyu demo`` today: the owner clicks through every link (and every panel the pages load with
htmx), and so does a store's staff member. A page that fails on real-looking data fails here,
whatever the unit tests of that page chose as their data."""

import re
from collections import deque
from urllib.parse import parse_qsl, urlsplit

import pytest

from siyu.commerce.models import Staff
from siyu.demo import build_demo
from siyu.demo.showcase import prepare_showcase
from siyu.journeys.queries import journey_dry_run
from siyu.messaging.models import ChannelConfig, MessageTemplate, TemplateStatus
from siyu.tenancy.services import workspace_create
from tests import factories

LINK = re.compile(r'(?:href|hx-get)="(/[^"#]*)"')
#: Not console pages: sign-out, the admin, the API, the language switch, static files.
SKIPPED = ("/logout/", "/admin/", "/api/", "/i18n/", "/assets/", "/static/", "/media/")
MOST_PAGES = 250


def page_kind(url: str) -> str:
    """One visit per kind of page: ids become '#', and only the query's names count."""
    parts = urlsplit(url)
    path = re.sub(r"/\d+/", "/#/", parts.path)
    names = sorted({name for name, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return path + ("?" + "&".join(names) if names else "")


def crawl(client) -> tuple[dict[str, int], list[str]]:
    """Status of every kind of page reached from '/', and the failures, each with its URL."""
    seen: dict[str, int] = {}
    failures: list[str] = []
    queue = deque(["/"])
    kinds = {page_kind("/")}
    while queue and len(seen) < MOST_PAGES:
        url = queue.popleft()
        response = client.get(url.replace("&amp;", "&"))
        seen[url] = response.status_code
        if response.status_code not in (200, 302):
            failures.append(f"{response.status_code} {url}")
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        for link in LINK.findall(response.content.decode()):
            if link.startswith(SKIPPED) or page_kind(link) in kinds:
                continue
            kinds.add(page_kind(link))
            queue.append(link)
    return seen, failures


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        ws = workspace_create(slug="demo-crawled", name="鲜果时光 FreshFruit Demo")
        build_demo(workspace=ws, contacts=600, seed=5)
        prepare_showcase(workspace=ws)
        yield ws
        ws.delete()


@pytest.mark.django_db
def test_the_owner_opens_every_page_of_the_demo(client, demo):
    client.force_login(factories.member(demo, "owner"))
    seen, failures = crawl(client)
    assert failures == []
    # The crawl went everywhere the navigation leads, not just the home page.
    for section in ("/contacts/", "/audiences/layers/", "/analytics/metrics/", "/journeys/"):
        assert any(url.startswith(section) for url in seen), section
    assert len(seen) > 40


@pytest.mark.django_db
def test_a_staff_member_opens_every_page_of_the_demo(client, demo):
    user = factories.member(demo, "staff")
    Staff.objects.filter(pk=Staff.objects.filter(workspace=demo).first().pk).update(user=user)
    client.force_login(user)
    seen, failures = crawl(client)
    assert failures == []
    assert any(url.startswith("/contacts/") for url in seen)


@pytest.mark.django_db
def test_the_demo_has_a_channel_and_published_content_a_journey_can_use(demo):
    channel = ChannelConfig.objects.get(workspace=demo, name="控制台（演示）")
    welcome = MessageTemplate.objects.get(workspace=demo, name="新客欢迎")
    assert welcome.status == TemplateStatus.PUBLISHED and channel.enabled
    dry = journey_dry_run(
        workspace=demo,
        definition={
            "trigger": {"type": "manual"},
            "entry_rule": {"orders": {"count": {"gte": 1}}},
            "steps": [
                {"key": "hi", "type": "send", "channel_id": channel.id, "template_id": welcome.id}
            ],
        },
    )
    assert dry.audience > 0
    bodies = [m["body"] for c in dry.sample for m in c.messages]
    assert bodies and all("欢迎加入鲜果时光" in b and "{{" not in b for b in bodies)
