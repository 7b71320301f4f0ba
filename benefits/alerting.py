"""Alerts: the pack's alert rules over the month's facts, each identity once.

The message, rule_id, party, subject and fingerprint of every alert row
(:mod:`benefits.alertid`), rendered as :mod:`benefits.display` renders facts.
"""

from __future__ import annotations

import hashlib

import polars as pl

from benefits.alertid import fingerprint
from benefits.compiled import _bool_expr, _lower_one_per, _select_one_per
from benefits.display import display_expr
from benefits.expr import Scope
from benefits.lang.polars import to_polars
from benefits.period import BenefitMonth
from benefits.pipeline import AlertStage, alert_stages
from benefits.rulebook import RulePack

ALERT_SCHEMA: dict[str, pl.DataType] = {
    "id_no": pl.String(),
    "kind": pl.String(),
    "policy_id": pl.String(),
    "due_date": pl.Date(),
    "message": pl.String(),
    "holds": pl.String(),
    "rule_id": pl.String(),
    "party": pl.String(),
    "subject": pl.String(),
    "fingerprint": pl.String(),
}


def _message(pieces: tuple[tuple[str, str], ...]) -> pl.Expr:
    out: list[pl.Expr] = []
    for text, kind in pieces:
        if kind == "":
            out.append(pl.lit(text))
        elif kind == "due":
            out.append(pl.col("__due").dt.strftime("%Y-%m-%d").fill_null(""))
        else:
            out.append(display_expr(text, kind).fill_null(""))
    return pl.concat_str(out) if out else pl.lit("")


def _fingerprints(texts: pl.Series) -> pl.Series:
    """Each row's fingerprint (:func:`benefits.alertid.fingerprint`), from a struct column of
    the facts a message reports: Polars writes the canonical JSON (keys sorted, no spaces,
    the escapes of ``json.dumps``) and only the hashing is left to a Python loop."""
    canonical = texts.struct.unnest().select(
        pl.struct(sorted(texts.struct.fields)).struct.json_encode()
    )
    sha256 = hashlib.sha256
    return pl.Series(
        [sha256(text.encode("utf-8")).hexdigest() for text in canonical.to_series().to_list()],
        dtype=pl.String,
    )


def _identity_columns(alert: AlertStage) -> list[pl.Expr]:
    """rule_id, party, subject and fingerprint of an alert rule's rows (:mod:`benefits.alertid`).

    The facts are rendered as the message renders them, so the event path, which renders them
    the same way, gives the same fingerprint.
    """
    party = pl.col("id_no").cast(pl.String)
    if alert.party_by:
        group = pl.col(alert.party_by).cast(pl.String)
        party = pl.when(group.fill_null("") != "").then(group).otherwise(party)
    if alert.subject_from_due:
        subject = pl.col("__due").dt.strftime("%Y-%m-%d").fill_null("")
    else:
        subject = pl.lit("")
    kinds = dict(p for p in alert.message if p[1] not in ("", "due"))
    if alert.reported:
        facts = pl.struct(
            [display_expr(n, kinds[n]).fill_null("").alias(n) for n in alert.reported]
        )
        prints = facts.map_batches(_fingerprints, return_dtype=pl.String, is_elementwise=True)
    else:
        prints = pl.lit(fingerprint({}))
    return [
        pl.lit(alert.id).alias("rule_id"),
        party.alias("party"),
        subject.alias("subject"),
        prints.alias("fingerprint"),
    ]


def evaluate_alerts(
    pack: RulePack,
    facts: pl.DataFrame,
    scope: Scope,
    quarantine: pl.DataFrame,
    month: BenefitMonth,
) -> pl.DataFrame:
    """Every alert of the pack for the month, each identity once."""
    frames = []
    q_scope = Scope(constants=scope.constants, params=scope.params)
    for alert in alert_stages(pack, scope):
        if alert.source == "quarantine":
            frame, sc = quarantine.with_row_index("__i"), q_scope
        else:
            frame, sc = facts, scope
        cond = _bool_expr(to_polars(alert.when, sc))
        if alert.scope == "residents":
            cond = cond & pl.col("resident") & pl.col("alive")
        if alert.one_per:
            cond = cond & _select_one_per(frame, cond, _lower_one_per(alert.one_per, sc))
        frames.append(
            frame.lazy()
            .filter(cond)
            .with_columns(to_polars(alert.due, sc).polars().alias("__due"))
            .select(
                pl.col("id_no"),
                pl.lit(alert.kind).alias("kind"),
                pl.lit(alert.policy).alias("policy_id"),
                pl.col("__due").alias("due_date"),
                _message(alert.message).alias("message"),
                pl.lit(alert.holds, pl.String).alias("holds"),
                *_identity_columns(alert),
            )
        )
    if not frames:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    alerts = pl.concat(frames).cast(ALERT_SCHEMA).filter(pl.col("id_no").is_not_null()).collect()
    return alerts.unique(
        subset=["id_no", "kind", "policy_id", "due_date"], keep="first", maintain_order=True
    ).sort(["id_no", "kind", "policy_id", "due_date"])
