import csv
import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal

from siyu.commerce.models import ChannelSpend
from siyu.importing import run_import


def write_csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def stored(ws):
    return sorted(
        ChannelSpend.objects.filter(workspace=ws).values_list(
            "channel", "campaign", "month", "amount", "note"
        )
    )


def test_spend_csv_keeps_good_rows_and_rejects_each_bad_one_with_its_line(ws, tmp_path):
    path = write_csv(
        tmp_path / "spend.csv",
        ["channel", "campaign", "month", "amount", "note"],
        [
            ["douyin", "", "2026-03", "12000.50", "达人合作"],  # line 2
            ["xiaohongshu", "spring", "2026-03-15", "800", ""],  # any day stands for its month
            ["tiktok", "", "2026-03", "10.00", ""],  # line 4: unknown channel
            ["douyin", "", "2026-04", "-5", ""],  # line 5: negative
            ["douyin", "", "2026-13", "5.00", ""],  # line 6: impossible month
            ["douyin", "", "2026-03", "99.00", ""],  # line 7: same channel and month as line 2
            ["ads", "", "2026-04", "1.005", ""],  # line 8: below the fen
        ],
    )

    report = run_import(workspace=ws, entity="spend", path=path)

    assert (report.total, report.created, report.rejected) == (7, 2, 5)
    assert [line for line, _ in report.errors] == [4, 5, 6, 7, 8]
    reasons = dict(report.errors)
    assert reasons[4].startswith("channel: input should be 'store_qr', 'wecom',")
    assert reasons[5] == "amount: input should be greater than or equal to 0, got '-5'"
    assert reasons[6].startswith("month: 2026-13-01 is not a valid date")
    assert reasons[7] == "month: 'douyin/2026-03' already appears on line 2"
    assert reasons[8].startswith("amount: decimal input should have no more than 2 decimal places")
    assert stored(ws) == [
        ("douyin", "", date(2026, 3, 1), Decimal("12000.50"), "达人合作"),
        ("xiaohongshu", "spring", date(2026, 3, 1), Decimal("800.00"), ""),
    ]
    with (tmp_path / "spend.rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        rejects = list(csv.reader(fh))
    assert [(r[0], r[-2]) for r in rejects[1:]] == [
        ("tiktok", "4"),
        ("douyin", "5"),
        ("douyin", "6"),
        ("douyin", "7"),
        ("ads", "8"),
    ]


def test_rerunning_a_spend_file_is_a_no_op_and_a_corrected_amount_replaces_the_old(ws, tmp_path):
    header = ["channel", "campaign", "month", "amount"]
    path = write_csv(
        tmp_path / "spend.csv",
        header,
        [["douyin", "", "2026-03", "100.00"], ["wecom", "q1", "2026-03", "50.00"]],
    )
    first = run_import(workspace=ws, entity="spend", path=path)
    again = run_import(workspace=ws, entity="spend", path=path)
    write_csv(
        tmp_path / "spend.csv",
        header,
        [["douyin", "", "2026-03", "120.00"], ["wecom", "q1", "2026-03", "50.00"]],
    )

    corrected = run_import(workspace=ws, entity="spend", path=path)

    assert (first.created, first.unchanged) == (2, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert (corrected.created, corrected.updated, corrected.unchanged) == (0, 1, 1)
    assert ChannelSpend.objects.get(workspace=ws, channel="douyin").amount == Decimal("120.00")
    assert ChannelSpend.objects.filter(workspace=ws).count() == 2


def test_spend_jsonl_takes_the_api_shape(ws, tmp_path):
    path = tmp_path / "spend.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"channel": "official_account", "month": "2026-02", "amount": "300"}),
                json.dumps({"channel": "ads", "month": "2026-02", "amount": "1", "cost": "x"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )

    report = run_import(workspace=ws, entity="spend", path=path)

    assert report.created == 1
    assert report.errors == [(2, "cost: unknown field")]
    assert stored(ws) == [("official_account", "", date(2026, 2, 1), Decimal("300.00"), "")]


def test_spend_import_stays_in_its_workspace(ws, other_ws, tmp_path):
    ChannelSpend.objects.create(
        workspace=other_ws, channel="douyin", month=date(2026, 3, 1), amount=Decimal("7.00")
    )
    path = write_csv(
        tmp_path / "spend.csv", ["channel", "month", "amount"], [["douyin", "2026-03", "9.00"]]
    )

    report = run_import(workspace=ws, entity="spend", path=path)

    assert report.created == 1
    assert ChannelSpend.objects.get(workspace=other_ws).amount == Decimal("7.00")
    assert ChannelSpend.objects.get(workspace=ws).amount == Decimal("9.00")


def test_siyu_import_spend_command(tmp_path):
    env = {**os.environ, "SIYU_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)  # its own embedded database
    siyu = [sys.executable, "-m", "siyu.cli"]
    path = write_csv(
        tmp_path / "spend.csv",
        ["channel", "month", "amount"],
        [["douyin", "2026-03", "10.00"], ["nowhere", "2026-03", "1.00"]],
    )
    init = subprocess.run(
        [*siyu, "init", "--slug", "fruit"], env=env, capture_output=True, text=True, timeout=120
    )
    assert init.returncode == 0, init.stderr

    done = subprocess.run(
        [*siyu, "import", "spend", str(path), "--workspace", "fruit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # A file with rejected rows exits non-zero, after keeping the good ones.
    assert done.returncode == 1, done.stderr
    assert "2 rows: 1 created" in done.stdout
    assert "line 3: channel: input should be" in done.stdout
