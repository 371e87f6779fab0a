"""Creating experiments (with every refusal naming its path), starting them on a segment's
members in bulk, assigning latecomers with the same function, and cross-workspace isolation."""

from datetime import UTC, datetime

import pytest

from siyu.errors import DomainError, NotFound, ValidationFailed
from siyu.experiments import queries, services, stats
from siyu.experiments.models import Experiment, ExperimentAssignment
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AB = [{"key": "A", "weight": 50}, {"key": "B", "weight": 40}, {"key": "holdout", "weight": 10}]


def _experiment(ws, members, **kw):
    seg = factories.segment_with(ws, members)
    return services.experiment_create(
        workspace=ws,
        name=kw.pop("name", "Coupon test"),
        segment_id=seg.id,
        variants=kw.pop("variants", AB),
        **kw,
    )


def test_start_assigns_every_member_once_with_the_hash_variant(ws):
    members = factories.contacts_many(ws, 30)
    exp = _experiment(ws, members)

    assigned = services.experiment_start(workspace=ws, experiment=exp, now=NOW)
    again = services.experiment_start(workspace=ws, experiment=exp, now=NOW)

    assert (assigned, again) == (30, 0)
    rows = list(
        ExperimentAssignment.objects.filter(experiment=exp).values_list("contact_id", "variant")
    )
    assert len(rows) == 30
    assert dict(rows) == {c.id: stats.assign_variant(exp.salt, c.id, AB) for c in members}
    exp.refresh_from_db()
    assert (exp.status, exp.start_at) == ("running", NOW)
    assert queries.variant_for(exp, members[0].id) == stats.assign_variant(
        exp.salt, members[0].id, AB
    )


def test_restart_assigns_only_new_members_and_latecomers_keep_the_hash_variant(ws, other_ws):
    members = factories.contacts_many(ws, 5)
    exp = _experiment(ws, members)
    services.experiment_start(workspace=ws, experiment=exp, now=NOW)
    late = factories.contacts_many(ws, 3)
    foreign = factories.contacts_many(other_ws, 1)[0]

    added = services.experiment_assign(
        workspace=ws, experiment=exp, contact_ids=[late[0].id, members[0].id, foreign.id]
    )

    assert added == 1
    assert queries.variant_for(exp, late[0].id) == stats.assign_variant(exp.salt, late[0].id, AB)
    assert queries.variant_for(exp, foreign.id) is None
    assert queries.variant_for(exp, late[1].id) is None
    assert ExperimentAssignment.objects.filter(experiment=exp).count() == 6


def test_control_is_holdout_when_present_else_first(ws):
    members = factories.contacts_many(ws, 2)
    with_holdout = _experiment(ws, members)
    plain = _experiment(
        ws, members, name="Plain", variants=[{"key": "x", "weight": 50}, {"key": "y", "weight": 50}]
    )

    assert queries.control_key(with_holdout) == "holdout"
    assert queries.control_key(plain) == "x"


@pytest.mark.parametrize(
    ("variants", "path", "message"),
    [
        (
            [{"key": "A", "weight": 50}, {"key": "B", "weight": 40}],
            "variants",
            "各版本权重之和须为 100，现在是 90。",
        ),
        ([{"key": "A", "weight": 100}], "variants", "实验需要 2 到 5 个版本。"),
        (
            [{"key": "A", "weight": 50}, {"key": "A", "weight": 50}],
            "variants",
            "版本标识不能重复。",
        ),
        ([{"key": "A", "weight": 50}, {"key": "B b", "weight": 50}], "variants.1.key", None),
        ([{"key": "A", "weight": 0}, {"key": "B", "weight": 100}], "variants.0.weight", None),
    ],
)
def test_invalid_variants_are_refused_with_their_path(ws, variants, path, message):
    seg = factories.segment_with(ws, [])

    with pytest.raises(ValidationFailed) as err:
        services.experiment_create(workspace=ws, name="Bad", segment_id=seg.id, variants=variants)

    assert err.value.path == path
    if message:
        assert err.value.message == message
    assert not Experiment.objects.filter(workspace=ws).exists()


def test_unknown_and_foreign_segments_are_refused_alike(ws, other_ws):
    foreign = factories.segment_with(other_ws, [])

    for segment_id in (foreign.id, 999_999):
        with pytest.raises(ValidationFailed) as err:
            services.experiment_create(workspace=ws, name="X", segment_id=segment_id, variants=AB)
        assert (err.value.path, err.value.message) == ("segment_id", "人群不存在。")
    assert not Experiment.objects.exists()


def test_other_workspace_cannot_start_or_read(ws, other_ws):
    exp = _experiment(ws, factories.contacts_many(ws, 3))

    with pytest.raises(NotFound):
        services.experiment_start(workspace=other_ws, experiment=exp, now=NOW)
    with pytest.raises(NotFound):
        queries.experiment_get(workspace=other_ws, experiment_id=exp.id)
    with pytest.raises(NotFound):
        queries.experiment_results(workspace=other_ws, experiment=exp)
    exp.refresh_from_db()
    assert exp.status == "draft"
    assert not ExperimentAssignment.objects.exists()


def test_finished_experiment_cannot_restart(ws):
    exp = _experiment(ws, factories.contacts_many(ws, 2))
    services.experiment_start(workspace=ws, experiment=exp, now=NOW)
    services.experiment_finish(workspace=ws, experiment=exp, now=NOW)

    with pytest.raises(DomainError) as err:
        services.experiment_start(workspace=ws, experiment=exp, now=NOW)

    assert err.value.code == "experiment_finished"
