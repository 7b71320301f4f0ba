"""The releases page: rule pack releases, their four-eyes actions, what changes, the calendar.

A pack is submitted from the browser as a ``.zip`` of its folder (``pack.yaml`` at the top or
in one folder); only its ``*.yaml`` files are read, none outside the archive's folder.

Example:
    >>> view = releases_view(ctx, who)                           # doctest: +SKIP
    >>> view["in_force"]["id"]                                    # doctest: +SKIP
    2
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from benefits.ledger import packs
from benefits.ledger.errors import InvalidInput
from benefits.ledger.models import PackRelease
from benefits.paramcalendar import MissingYearly
from benefits.web.auth import Principal
from benefits.web.context import WebContext
from benefits.web.services.rules import missing_yearly, yearly_due

MAX_ZIP_BYTES = 10_000_000
MAX_FILES = 500
MAX_UNZIPPED_BYTES = 20_000_000


def _row(r: PackRelease, in_force: int | None) -> dict[str, Any]:
    return {
        "id": r.id, "status": r.status, "name": r.name, "version": r.version,
        "digest": r.digest, "files": r.file_count, "note": r.note,
        "base": r.base_release_id, "generation": r.generation,
        "in_force": r.id == in_force,
        "submitted_by": r.submitted_by, "submitted_at": r.submitted_at,
        "approved_by": r.approved_by, "approved_at": r.approved_at,
        "rejected_by": r.rejected_by, "rejected_at": r.rejected_at,
        "reject_reason": r.reject_reason,
        "rolled_back_by": r.rolled_back_by, "rolled_back_at": r.rolled_back_at,
        "rollback_reason": r.rollback_reason,
    }  # fmt: skip


def releases_view(ctx: WebContext) -> dict[str, Any]:
    """Every release, newest first, and the one in force."""
    cur = ctx.ledger.release_in_force()
    rows = [_row(r, cur.id if cur else None) for r in ctx.ledger.pack_releases()]
    return {"releases": rows, "in_force": _row(cur, cur.id) if cur else None}


def _param_changes(old: dict[str, bytes] | None, new: dict[str, bytes]) -> list[dict[str, Any]]:
    """Parameter values added, removed or changed between two packs' files (by date)."""
    import yaml

    def params(files: dict[str, bytes] | None) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for path, data in (files or {}).items():
            if path.startswith("parameters/"):
                for name, p in (yaml.safe_load(data) or {}).items():
                    out[name] = {str(k): str(v) for k, v in (p.get("values") or {}).items()}
        return out

    a, b = params(old), params(new)
    changes = []
    for name in sorted(set(a) | set(b)):
        for day in sorted(set(a.get(name, {})) | set(b.get(name, {}))):
            before, after = a.get(name, {}).get(day), b.get(name, {}).get(day)
            if before != after:
                earlier = [d for d in a.get(name, {}) if d <= day]  # ISO dates sort as text
                in_force = a[name][max(earlier)] if earlier else None
                changes.append({"parameter": name, "from": day, "old": before, "new": after,
                                "in_force_before": in_force})  # fmt: skip
    return changes


def release_view(ctx: WebContext, release_id: int, who: Principal) -> dict[str, Any]:
    """One release: its state, files, attached reports, parameter changes vs its base, and
    what `who` may do with it (four eyes: the submitter cannot approve)."""
    r = ctx.ledger.pack_release(release_id)
    cur = ctx.ledger.release_in_force()
    files = packs.release_files(ctx.db, r.id)
    base = packs.release_files(ctx.db, r.base_release_id) if r.base_release_id else None
    reports = [
        {"id": x.id, "kind": x.kind, "name": x.name, "media_type": x.media_type,
         "origin": x.origin, "size": len(x.content), "sha256": x.sha256,
         "text": x.content.decode("utf-8", errors="replace")
         if x.media_type in ("text/markdown", "text/plain", "text/csv", "application/json")
         else None}
        for x in packs.release_reports(ctx.db, r.id)
    ]  # fmt: skip
    pending = r.status == "submitted"
    own = who.username == r.submitted_by
    return {
        "r": _row(r, cur.id if cur else None),
        "files": [{"path": p, "size": len(b)} for p, b in files.items()],
        "reports": reports,
        "changes": _param_changes(base, files),
        "can_approve": pending and who.can("rules.decide") and not own,
        "approve_block": (
            "您提交了此版本，须由另一人审核 / you submitted it: another person approves"
            if pending and own and who.can("rules.decide") else None
        ),
        "can_reject": pending and (who.can("rules.decide") or own),
    }  # fmt: skip


def _pack_root(root: Path) -> Path:
    if (root / "pack.yaml").is_file():
        return root
    subs = [p for p in root.iterdir() if p.is_dir()]
    if len(subs) == 1 and (subs[0] / "pack.yaml").is_file():
        return subs[0]
    raise InvalidInput("the archive has no pack.yaml at its top or in its one folder")


def submit_zip(
    ctx: WebContext, data: bytes, by: str, note: str, reports: list[packs.Report]
) -> PackRelease:
    """Submit a zipped pack folder as a release (see :func:`benefits.ledger.packs.submit`)."""
    if len(data) > MAX_ZIP_BYTES:
        raise InvalidInput("the pack archive is larger than 10 MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = [n for n in archive.namelist() if n.endswith(".yaml")]
    except zipfile.BadZipFile as exc:
        raise InvalidInput("the pack must be a .zip of the rule pack folder") from exc
    if len(names) > MAX_FILES:
        raise InvalidInput(f"the archive has more than {MAX_FILES} YAML files")
    if sum(archive.getinfo(n).file_size for n in names) > MAX_UNZIPPED_BYTES:
        raise InvalidInput("the pack's files add up to more than 20 MB unpacked")
    with tempfile.TemporaryDirectory(prefix="benefits-submit-") as tmp:
        root = Path(tmp) / "pack"
        for name in names:
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts or "__MACOSX" in rel.parts:
                raise InvalidInput(f"the archive holds a file outside its folder: {name}")
            target = root.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
        if not root.is_dir():
            raise InvalidInput("the archive holds no .yaml file")
        return ctx.ledger.submit_pack(_pack_root(root), by=by, note=note, reports=reports)


def missing_now(ctx: WebContext) -> list[MissingYearly]:
    """The yearly parameters of the pack in use still missing a value today."""
    return missing_yearly(ctx.pack, ctx.db.now().date(), yearly_due(ctx))
