"""The customer pool: who arrived through which channel, when, at which store and with which
identities, drawn for every contact at once so referrals can point at earlier contacts."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from siyu.contacts.identities import normalise_identity
from siyu.contacts.models import Consent, Contact, Identity
from siyu.demo import writer
from siyu.demo.catalogue import MEMBER_TIER_WEIGHTS, MEMBER_TIERS, NICKNAMES, PHONE_PREFIXES
from siyu.demo.world import DAY, STAFF_PER_STORE, World, business_seconds, chinese_names

SOURCES = (
    "store_qr",
    "delivery_card",
    "official_account",
    "mini_program",
    "douyin",
    "xiaohongshu",
    "referral",
)
STORE_QR, DELIVERY_CARD, OFFICIAL_ACCOUNT, MINI_PROGRAM, DOUYIN, XIAOHONGSHU, REFERRAL = range(
    len(SOURCES)
)
_SHARE = np.array([0.38, 0.15, 0.14, 0.12, 0.07, 0.05, 0.09])
#: Imported followers often never buy; people added at the till already have.
_NEVER_BUY = np.array([0.03, 0.02, 0.15, 0.06, 0.40, 0.45, 0.08])
_PHONE = np.array([0.75, 0.55, 0.30, 0.85, 0.15, 0.10, 0.80])
_UNIONID = np.array([0.55, 0.40, 1.00, 1.00, 0.15, 0.10, 1.00])
_WECOM = np.array([1.00, 1.00, 0.35, 0.35, 0.30, 0.30, 1.00])
_CAMPAIGN = (
    "门店渠道活码",
    "外卖卡片加企微",
    "公众号关注",
    "小程序首单礼",
    "抖音团购导入",
    "小红书种草导入",
    "老带新·邀请有礼",
)
OA_APP_ID = "wx7d3f2a91c4e5b608"
MP_APP_ID = "wx2b8e41f09a6c3d75"


@dataclass
class Pool:
    """Per contact, in first_seen_at order (so ids ascend with it). ``ref_id`` is the id other
    rows point at: the contact's own, or its survivor's once merged."""

    id: np.ndarray
    ref_id: np.ndarray
    first_seen: np.ndarray
    source: np.ndarray
    store: np.ndarray
    owner: np.ndarray  # staff index, -1 for none
    referrer: np.ndarray  # contact index, -1 for none
    has_phone: np.ndarray
    member: np.ndarray
    has_wecom: np.ndarray
    has_unionid: np.ndarray
    has_oa: np.ndarray
    has_mp: np.ndarray
    has_meituan: np.ndarray
    buyer: np.ndarray
    first_order: np.ndarray  # Unix seconds of the first purchase (meaningful for buyers)

    def __len__(self) -> int:
        return len(self.id)


def draw_pool(rng: np.random.Generator, n: int, world: World, ids: np.ndarray) -> Pool:
    clock = world.clock
    day = rng.integers(0, clock.days, n)
    tod = business_seconds(rng, n)
    order = np.lexsort((tod, day))
    day, tod = day[order], tod[order]
    source = rng.choice(len(SOURCES), n, p=_SHARE)
    source[0] = STORE_QR  # the first contact cannot have been referred
    referrer = np.where(source == REFERRAL, (rng.random(n) * np.arange(n)).astype(np.int64), -1)
    p_store = world.store_weight / world.store_weight.sum()
    store = rng.choice(world.n_stores, n, p=p_store)
    # Friends mostly shop where the friend who invited them shops.
    follow = (referrer >= 0) & (rng.random(n) < 0.8)
    store[follow] = store[referrer[follow]]
    u = rng.random((6, n))
    has_wecom = u[0] < _WECOM[source]
    staff_pick = store * STAFF_PER_STORE + rng.integers(0, STAFF_PER_STORE, n)
    owner = np.where(has_wecom, staff_pick, -1)
    owner[source == DELIVERY_CARD] = store[source == DELIVERY_CARD] * STAFF_PER_STORE  # the manager
    has_phone = u[1] < _PHONE[source]
    member = has_phone & (u[2] < 0.8)
    has_unionid = u[3] < _UNIONID[source]
    has_oa = (source == OFFICIAL_ACCOUNT) | (has_unionid & (u[4] < 0.3))
    has_mp = (source == MINI_PROGRAM) | (has_unionid & (u[5] < 0.45))
    has_meituan = (source == DELIVERY_CARD) & (rng.random(n) < 0.65)
    # The first purchase: minutes later for those added at the till or by a delivery card,
    # a few days later for the others.
    same_visit = (source == STORE_QR) | (source == DELIVERY_CARD)
    delay = np.where(same_visit, 0, np.minimum(rng.geometric(0.35, n) - 1, 14))
    first_day = day + delay
    first_tod = np.where(
        delay == 0, np.minimum(tod + rng.integers(60, 1800, n), DAY - 1), business_seconds(rng, n)
    )
    buyer = (rng.random(n) >= _NEVER_BUY[source]) & (first_day < clock.days)
    return Pool(
        id=ids,
        ref_id=ids.copy(),
        first_seen=clock.at(day, tod),
        source=source,
        store=store,
        owner=owner,
        referrer=referrer,
        has_phone=has_phone,
        member=member,
        has_wecom=has_wecom,
        has_unionid=has_unionid,
        has_oa=has_oa,
        has_mp=has_mp,
        has_meituan=has_meituan,
        buyer=buyer,
        first_order=clock.at(np.minimum(first_day, clock.days - 1), first_tod),
    )


def phone_number(i: int, seed: int) -> str:
    """A distinct mainland mobile per contact ordinal: 7919 is prime to 10^8, so the eight
    digits never repeat within a prefix."""
    return (
        PHONE_PREFIXES[i % len(PHONE_PREFIXES)]
        + f"{(i // len(PHONE_PREFIXES) * 7919 + seed * 104_729) % 10**8:08d}"
    )


_ID_PREFIX = {
    "wecom_external_userid": "wmFF",
    "wechat_unionid": "oUFF",
    "douyin_id": "dy",
    "xiaohongshu_id": "xhs",
    "meituan_id": "mt",
}


def member_no(i: int) -> str:
    return f"FF{i + 1:08d}"


def identity_value(kind: str, i: int, seed: int) -> str:
    """The id contact ordinal ``i`` has under ``kind``: distinct per contact, stable per seed."""
    if kind == "phone":
        return phone_number(i, seed)
    if kind == "member_no":
        return member_no(i)
    return f"{_ID_PREFIX[kind]}{i:010d}"


def _openid(app: str, i: int) -> str:
    return f"o{app[-6:]}{i:010d}"


def write_contacts(
    *,
    workspace_id: int,
    pool: Pool,
    idx: np.ndarray,
    world: World,
    rng: np.random.Generator,
    seed: int,
    now: int,
) -> int:
    """Contacts pool[idx] with their identities and consents; returns the identities written."""
    n = len(idx)
    source, store, owner = pool.source[idx], pool.store[idx], pool.owner[idx]
    identities: dict[str, list] = {
        "contact_id": [],
        "kind": [],
        "app_id": [],
        "value_hash": [],
        "value": [],
        "display": [],
    }
    phone_fields = {"hash": [""] * n, "enc": [""] * n, "masked": [""] * n}

    def add(kind: str, mask: np.ndarray, value_of, app_id: str = "") -> None:
        for k in np.flatnonzero(mask).tolist():
            i = int(idx[k])
            normal = normalise_identity(kind, value_of(i), app_id)
            stored = normal.stored_value()
            identities["contact_id"].append(int(pool.id[i]))
            identities["kind"].append(kind)
            identities["app_id"].append(normal.app_id)
            identities["value_hash"].append(normal.value_hash)
            identities["value"].append(stored)
            identities["display"].append(normal.display())
            if kind == "phone":
                phone_fields["hash"][k], phone_fields["enc"][k], phone_fields["masked"][k] = (
                    normal.value_hash,
                    stored,
                    normal.display(),
                )

    for kind, mask in (
        ("phone", pool.has_phone[idx]),
        ("member_no", pool.member[idx]),
        ("wecom_external_userid", pool.has_wecom[idx]),
        ("wechat_unionid", pool.has_unionid[idx]),
        ("douyin_id", source == DOUYIN),
        ("xiaohongshu_id", source == XIAOHONGSHU),
        ("meituan_id", pool.has_meituan[idx]),
    ):
        add(kind, mask, lambda i, kind=kind: identity_value(kind, i, seed))
    add("wechat_openid", pool.has_oa[idx], lambda i: _openid(OA_APP_ID, i), OA_APP_ID)
    add("wechat_openid", pool.has_mp[idx], lambda i: _openid(MP_APP_ID, i), MP_APP_ID)

    staff_code = np.where(owner >= 0, world.staff_code[np.maximum(owner, 0)], "")
    store_code = world.store_code[store]
    referrer = pool.referrer[idx]
    referrer_id = pool.ref_id[np.maximum(referrer, 0)]
    platform = np.where(pool.has_meituan[idx], "meituan", "eleme")
    state = np.select(
        [source == STORE_QR, source == DELIVERY_CARD, source == REFERRAL],
        [
            np.char.add(np.char.add(np.char.add("store:", store_code), ":staff:"), staff_code),
            np.char.add(np.char.add(np.char.add("delivery:", platform), ":"), store_code),
            np.char.add("referral:", referrer_id.astype(str)),
        ],
        "",
    )
    ft = (source == STORE_QR) | (source == DELIVERY_CARD)
    member = pool.member[idx]
    names = np.where(member | (rng.random(n) < 0.15), chinese_names(rng, n), "")
    nick_pool = np.array(NICKNAMES)
    nickname = np.where(rng.random(n) < 0.8, nick_pool[rng.integers(0, len(nick_pool), n)], "")
    gender = rng.choice(np.array(["f", "m", ""]), n, p=[0.62, 0.30, 0.08])
    has_birthday = member & (rng.random(n) < 0.45)
    birthday = world.clock.epoch_days(0) - rng.integers(18 * 365, 60 * 365, n)
    tiers = np.array([json.dumps({"member_tier": t}, ensure_ascii=False) for t in MEMBER_TIERS])
    attributes = np.where(
        member, tiers[rng.choice(len(MEMBER_TIERS), n, p=MEMBER_TIER_WEIGHTS)], "{}"
    )
    staff_id = world.staff_id[np.maximum(owner, 0)]
    writer.write(
        Contact,
        {
            "id": writer.Col("int", pool.id[idx]),
            "workspace": writer.Col("int", np.full(n, workspace_id)),
            "name": writer.Col("text", names),
            "nickname": writer.Col("text", nickname),
            "gender": writer.Col("text", gender),
            "birthday": writer.Col("date", birthday, null=~has_birthday),
            "city": writer.Col("text", world.store_city[store]),
            "phone_enc": writer.Col("text", phone_fields["enc"]),
            "phone_hash": writer.Col("text", phone_fields["hash"]),
            "phone_masked": writer.Col("text", phone_fields["masked"]),
            "member_no": writer.Col(
                "text",
                [
                    member_no(i) if m else ""
                    for i, m in zip(idx.tolist(), member.tolist(), strict=True)
                ],
            ),
            "source_channel": writer.Col("text", np.array(SOURCES)[source]),
            "first_touch_campaign": writer.Col("text", np.array(_CAMPAIGN)[source]),
            "first_touch_state": writer.Col("text", state),
            "first_touch_store": writer.Col("int", world.store_id[store], null=~ft),
            "first_touch_staff": writer.Col("int", staff_id, null=~ft | (owner < 0)),
            "store": writer.Col("int", world.store_id[store]),
            "owner_staff": writer.Col("int", staff_id, null=owner < 0),
            "referred_by": writer.Col("int", referrer_id, null=referrer < 0),
            "attributes": writer.Col("text", attributes),
            "first_seen_at": writer.Col("ts", pool.first_seen[idx]),
            "created_at": writer.Col("ts", np.full(n, now)),
            "updated_at": writer.Col("ts", np.full(n, now)),
        },
    )
    m = len(identities["contact_id"])
    identities_cols = {
        name: writer.Col("text", values)
        for name, values in identities.items()
        if name != "contact_id"
    }
    writer.write(
        Identity,
        {
            "workspace": writer.Col("int", np.full(m, workspace_id)),
            "contact": writer.Col("int", np.array(identities["contact_id"], dtype=np.int64)),
            **identities_cols,
            "created_at": writer.Col("ts", np.full(m, now)),
        },
    )
    _write_consents(workspace_id=workspace_id, pool=pool, idx=idx, rng=rng)
    return m


def _write_consents(
    *, workspace_id: int, pool: Pool, idx: np.ndarray, rng: np.random.Generator
) -> int:
    """WeCom and Official Account answers for those reachable there; SMS for phone holders, some
    of whom opted out; mini-program subscriptions for about half of its users."""
    n = len(idx)
    u = rng.random((4, n))
    parts = []
    sms = np.where(u[0] < 0.75, "granted", np.where(u[0] < 0.90, "opted_out", "unknown"))
    for channel, mask, status in (
        ("wecom", pool.has_wecom[idx], np.where(u[1] < 0.96, "granted", "opted_out")),
        ("official_account", pool.has_oa[idx], np.full(n, "granted")),
        ("sms", pool.has_phone[idx], sms),
        ("mini_program", pool.has_mp[idx] & (u[2] < 0.5), np.full(n, "granted")),
    ):
        k = np.flatnonzero(mask)
        parts.append((k, np.full(len(k), channel), status[k]))
    k = np.concatenate([p[0] for p in parts])
    source = np.array(SOURCES)[pool.source[idx][k]]
    return writer.write(
        Consent,
        {
            "workspace": writer.Col("int", np.full(len(k), workspace_id)),
            "contact": writer.Col("int", pool.id[idx][k]),
            "channel": writer.Col("text", np.concatenate([p[1] for p in parts])),
            "status": writer.Col("text", np.concatenate([p[2] for p in parts])),
            "source": writer.Col("text", source),
            "updated_at": writer.Col("ts", pool.first_seen[idx][k] + 60),
        },
    )
