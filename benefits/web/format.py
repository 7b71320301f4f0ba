"""Display helpers shared by pages, API and reports: money, times, bilingual labels.

Times are stored in UTC and shown in the configured display zone (``WebSettings.display_zone``,
``Asia/Shanghai`` by default, where the officers work) — on every page, flash message and report.

Example:
    >>> money("1234567.8")
    '1,234,567.80'
    >>> split_label("户籍在本区 / hukou in the district")
    ('户籍在本区', 'hukou in the district')
    >>> mask_ids_in_text("row 5: '33010219681315179X' is bad")
    "row 5: '330102********179X' is bad"
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CST = dt.timezone(dt.timedelta(hours=8), "CST")
DEFAULT_ZONE = "Asia/Shanghai"
UTC_IN_TEXT = re.compile(r"\b([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}) UTC\b")
# A run of letters and digits, ASCII or full-width: an ID-like value when it holds >= 14 digits
# (resident IDs of 15, 18 or a mistyped 16-19 characters, with full-width digits, and account
# numbers).
ID_LIKE_RUN = re.compile(r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]{14,}")
ID_LIKE_DIGITS = 14
DATE_IN_TEXT = re.compile(r"(?<![0-9])([0-9]{4})-[0-9]{2}-[0-9]{2}(?![0-9])")

BATCH_STATUS = {
    "draft": ("草稿", "draft"),
    "submitted": ("待审核", "submitted"),
    "approved": ("已审核", "approved"),
    "exported": ("已出盘", "bank file sent"),
    "reconciled": ("已对账", "reconciled"),
    "rejected": ("已退回", "rejected"),
}
ITEM_STATUS = {
    "pending": ("待发放", "pending"),
    "held": ("暂缓发放", "held"),
    "sent": ("已报银行", "sent to bank"),
    "paid": ("已到账", "paid"),
    "released": ("已解除暂缓", "released"),
    "recover": ("待追回", "to recover"),
}
ITEM_KIND = {
    "payment": ("正常发放", "payment"),
    "arrears": ("补发", "arrears"),
    "recovery": ("追回", "recovery"),
    "reissue": ("重发", "reissue"),
}
MODE = {
    "pay": ("发放", "pay"),
    "credit": ("服务额度", "credit"),
    "lead": ("线索", "lead"),
    "notice": ("告知", "notice"),
}
# A sweep decision only proposes: nothing is paid, credited or notified until the ledger
# says so (see `decision_state`).
DECISION = {
    "paid": ("应发放", "payable"),
    "held": ("暂缓发放", "held"),
    "credited": ("应计入服务额度", "to be credited"),
    "lead": ("线索待核实", "lead for a social worker"),
    "notice": ("应告知", "notice due to the family"),
    "not_eligible": ("不符合条件", "not eligible"),
    "excluded": ("因排除规则不发", "excluded"),
    "not_selected": ("未选定（每户一条）", "not selected (one per household)"),
}
PENDING_IN_BATCH = {
    "draft": ("待审批（批次草稿）", "awaiting approval (draft batch)"),
    "submitted": ("待审批", "awaiting approval"),
    "approved": ("已审批，待出盘", "approved, bank file not yet sent"),
}
ALERT_STATUS = {
    "open": ("待处理", "open"),
    "acknowledged": ("已确认", "acknowledged"),
    "resolved": ("已办结", "resolved"),
}
GROUPS = {
    "hardship": ("社会救助", "hardship"),
    "disabled": ("残疾人", "disabled people"),
    "elderly": ("老年人", "elderly"),
    "retirees": ("企业退休人员", "enterprise retirees"),
    "children": ("困境儿童", "children"),
}


def to_decimal(value: Any) -> Decimal:
    """A Decimal from a Decimal, int or numeric text (0 when empty)."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def money(value: Any) -> str:
    """Yuan with thousands separators and two decimals."""
    return f"{to_decimal(value):,.2f}"


def signed_money(value: Any) -> str:
    """Money with an explicit sign (for changes).

    >>> signed_money("-12.5"), signed_money("3")
    ('-12.50', '+3.00')
    """
    d = to_decimal(value)
    return ("+" if d > 0 else "") + f"{d:,.2f}"


def number(value: Any) -> str:
    """An integer with thousands separators."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"


def zone(name: str) -> dt.tzinfo:
    """The time zone called `name` (an IANA name), or ValueError saying what to give.

    >>> zone("Asia/Shanghai").utcoffset(dt.datetime(2025, 1, 1))
    datetime.timedelta(seconds=28800)
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name == DEFAULT_ZONE:  # no tz database on this machine: China has no DST
            return CST
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name such as {DEFAULT_ZONE} or UTC"
        ) from None


def when(value: dt.datetime | None, tz: dt.tzinfo | None = None) -> str:
    """A stored (UTC) time in the display zone `tz` (China Standard Time when not given).

    >>> when(dt.datetime(2025, 2, 3, 9, 0))
    '2025-02-03 17:00'
    >>> when(dt.datetime(2025, 2, 3, 9, 0), zone("UTC"))
    '2025-02-03 09:00'
    """
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(tz or CST).strftime("%Y-%m-%d %H:%M")


def local_times(text: str, tz: dt.tzinfo | None = None) -> str:
    """Times written 'YYYY-MM-DD HH:MM UTC' in a message (the ledger's) in the display zone.

    >>> local_times("approved by bob at 2025-01-04 09:00 UTC", zone("Asia/Shanghai"))
    'approved by bob at 2025-01-04 17:00 CST'
    """

    def convert(m: re.Match[str]) -> str:
        at = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
        local = at.astimezone(tz or CST)
        return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or str(tz))

    return UTC_IN_TEXT.sub(convert, text or "")


def split_label(text: str | None) -> tuple[str, str]:
    """'中文 / English' → ('中文', 'English'); a label without ' / ' is used for both."""
    if not text:
        return "", ""
    if " / " in text:
        zh, en = text.split(" / ", 1)
        return zh.strip(), en.strip()
    return text, text


def label(table: dict[str, tuple[str, str]], key: str | None) -> tuple[str, str]:
    """The (zh, en) label of a code, or the code itself."""
    if key is None:
        return "—", "—"
    return table.get(key, (key, key))


def decision_state(
    decision: str | None, item_status: str | None = None, batch_status: str | None = None
) -> tuple[str, str]:
    """A sweep decision labelled as the ledger knows it: the ledger item's state when there
    is one (pending in a batch not yet exported is not paid), else the proposal.

    >>> decision_state("paid")
    ('应发放', 'payable')
    >>> decision_state("paid", "pending", "submitted")
    ('待审批', 'awaiting approval')
    >>> decision_state("paid", "sent", "exported")
    ('已报银行', 'sent to bank')
    """
    if item_status is None:
        return label(DECISION, decision)
    if item_status == "pending" and batch_status in PENDING_IN_BATCH:
        return PENDING_IN_BATCH[batch_status]
    return label(ITEM_STATUS, item_status)


def _digit_count(value: str) -> int:
    return sum(1 for ch in value if ch.isdigit())  # ASCII and full-width digits alike


def mask_id_like(value: str) -> str:
    """Mask one ID-like value: the first 6 characters, then at least 8 stars, then at most the
    last 4 (fewer when the value is short, so an embedded birth date is never shown).

    >>> mask_id_like("33010219681315179X"), mask_id_like("330106500308021")
    ('330102********179X', '330106********1')
    >>> mask_id_like("３30106195003080214")
    '３30106********0214'
    """
    tail = max(0, min(4, len(value) - 14))
    hidden = len(value) - 6 - tail
    return value[:6] + "*" * max(8, hidden) + (value[-tail:] if tail else "")


def mask_ids_in_text(text: str | None) -> str:
    """Mask anything that looks like a resident ID or account number inside free text (alert
    messages, notes): any run of letters and digits, ASCII or full-width, holding at least 14
    digits — so 15-digit and 19-digit IDs and full-width digits are masked too."""
    if not text:
        return ""
    return ID_LIKE_RUN.sub(
        lambda m: mask_id_like(m.group(0)) if _digit_count(m.group(0)) >= ID_LIKE_DIGITS
        else m.group(0),
        text,
    )


def mask_dates_in_text(text: str) -> str:
    """Hide month and day of every date in a text (a birth date is part of the ID).

    >>> mask_dates_in_text("birth_date '1950-03-09' disagrees with 1950-03-08")
    "birth_date '1950-**-**' disagrees with 1950-**-**"
    """
    return DATE_IN_TEXT.sub(lambda m: m.group(1) + "-**-**", text)


def json_text(value: Any) -> str:
    """Compact JSON with Chinese kept readable (for audit entries).

    >>> json_text({"name": "张*明"})
    '{"name": "张*明"}'
    """
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def previous_month(month: str) -> str:
    """The month before `month`.

    >>> previous_month("2025-01")
    '2024-12'
    """
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def next_month(month: str) -> str:
    """The month after `month`.

    >>> next_month("2024-12")
    '2025-01'
    """
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + 1}-01" if mon == 12 else f"{year}-{mon + 1:02d}"
