"""Rule pack releases with four eyes: submit, approve, reject, roll back; the release in force.

A rule change pays thousands of people, so a pack becomes a *release* in the ledger before any
sweep may pay with it: one officer submits the pack folder (its files are stored byte for byte
with their SHA-256 digest, with the rules diff and what-if report its reviewers read), and
another approves it (never the submitter: four eyes, refused here and by the
``ck_pack_releases_four_eyes`` constraint). Each approval gets the next *generation*; the
approved release with the highest generation is **in force**: ``cycle run`` and the web
sweep with it, and the ledger refuses to record a sweep decided with any other pack
(:func:`release_for_sweep`). Emergency rollback marks the release in force ``rolled_back``
and the previous approved one is in force again. Every step is in the audit chain
(``rules.submit``, ``rules.approve``, ``rules.reject``, ``rules.rollback``).

A ledger with no approved release yet is not governed: sweeps are recorded with whatever pack
they used (as before this revision) until the first release is approved.

``submitted → approved → rolled_back``, or ``submitted → rejected``.

Example:
    >>> r = submit(db, Path("rules"), by="alice", note="2026 standards")   # doctest: +SKIP
    >>> approve(db, r.id, by="bob").generation                             # doctest: +SKIP
    1
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from benefits.errors import BenefitsError
from benefits.ledger import audit
from benefits.ledger.db import Database
from benefits.ledger.errors import (
    Conflict,
    FourEyesViolation,
    IllegalTransition,
    InvalidInput,
    LedgerError,
    NotFound,
)
from benefits.ledger.models import (
    APPROVED,
    REJECTED,
    ROLLED_BACK,
    SUBMITTED,
    PackRelease,
    PackReleaseFile,
    PackReleaseReport,
)

MAX_REPORT_BYTES = 20_000_000
REPORT_KINDS = ("diff", "whatif")
MEDIA_TYPES = {
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".json": "application/json",
    ".csv": "text/csv",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}


class UnapprovedPack(LedgerError):
    """A sweep decided with a rule pack that is not the approved release in force."""


@dataclass(frozen=True)
class Report:
    """A report to attach to a release: ``diff`` or ``whatif``, its file name and bytes."""

    kind: str
    name: str
    content: bytes
    origin: str  # "file FOO given by alice", "benefits rules diff", …

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(Path(self.name).suffix.lower(), "application/octet-stream")

    @classmethod
    def from_file(cls, kind: str, path: Path, by: str) -> Report:
        """A report read from a file the submitter gives; InvalidInput when unreadable."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            msg = f"cannot read the {kind} report {path}: {exc.strerror or exc}"
            raise InvalidInput(msg) from exc
        return cls(kind, path.name, data, f"file {path.name} given by {by}")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_files(folder: Path) -> dict[str, bytes]:
    """Every file the pack digest covers (``*.yaml`` under the folder), by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.yaml"))
    }


def files_digest(files: dict[str, bytes]) -> str:
    """The pack digest of stored files (as :func:`benefits.rulebook.pack_digest` computes it)."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0")
        h.update(files[path] + b"\0")
    return h.hexdigest()


def describe(r: PackRelease) -> str:
    """'release 3 (version 2026.1, a1b2c3d4e5f6)'."""
    return f"release {r.id} (version {r.version}, {r.digest[:12]})"


def _state(r: PackRelease) -> str:
    who, when = {
        SUBMITTED: (r.submitted_by, r.submitted_at),
        APPROVED: (r.approved_by, r.approved_at),
        REJECTED: (r.rejected_by, r.rejected_at),
        ROLLED_BACK: (r.rolled_back_by, r.rolled_back_at),
    }[r.status]
    return f"{r.status} (by {who}, {when:%Y-%m-%d %H:%M} UTC)"


def snapshot(r: PackRelease) -> dict[str, Any]:
    """What the audit chain records of a release."""
    return {"status": r.status, "name": r.name, "version": r.version, "digest": r.digest,
            "files": r.file_count, "generation": r.generation,
            "base_release": r.base_release_id}  # fmt: skip


# ------------------------------------------------------------------------------ reading


def current_release(session: Session) -> PackRelease | None:
    """The release in force: the approved one with the highest generation (None: no release)."""
    return session.execute(
        select(PackRelease).where(PackRelease.status == APPROVED)
        .order_by(PackRelease.generation.desc()).limit(1)
    ).scalar_one_or_none()  # fmt: skip


def get_release(session: Session, release_id: int, *, lock: bool = False) -> PackRelease:
    """The release with this id (row-locked when `lock`), or NotFound."""
    q = select(PackRelease).where(PackRelease.id == release_id)
    if lock:
        q = q.with_for_update()
    found = session.execute(q).scalar_one_or_none()
    if found is None:
        raise NotFound(f"there is no rule pack release {release_id} in the ledger")
    return found


def list_releases(db: Database) -> list[PackRelease]:
    """Every release, newest first."""
    with db.snapshot() as s:
        return list(s.execute(select(PackRelease).order_by(PackRelease.id.desc())).scalars())


def release_files(db: Database, release_id: int) -> dict[str, bytes]:
    """A release's files by path; LedgerError when a file no longer matches its hash."""
    with db.snapshot() as s:
        get_release(s, release_id)
        rows = s.execute(
            select(PackReleaseFile).where(PackReleaseFile.release_id == release_id)
        ).scalars()
        files = {}
        for f in rows:
            if _sha(f.content) != f.sha256:
                raise LedgerError(
                    f"release {release_id}: file {f.path} does not match its SHA-256 — the "
                    "stored pack was altered; do not use it"
                )
            files[f.path] = bytes(f.content)
    return files


def release_reports(db: Database, release_id: int) -> list[PackReleaseReport]:
    """The reports attached to a release, diff first."""
    with db.snapshot() as s:
        return list(s.execute(
            select(PackReleaseReport).where(PackReleaseReport.release_id == release_id)
            .order_by(PackReleaseReport.kind, PackReleaseReport.id)
        ).scalars())  # fmt: skip


def get_report(db: Database, release_id: int, report_id: int) -> PackReleaseReport:
    """One attached report, or NotFound."""
    with db.snapshot() as s:
        found = s.get(PackReleaseReport, report_id)
        if found is None or found.release_id != release_id:
            raise NotFound(f"release {release_id} has no report {report_id}")
        return found


def materialize(db: Database, release_id: int, cache: Path) -> Path:
    """The release's pack as a folder under `cache` (``<cache>/<digest>``), written once and
    checked against the digest; the folder the sweep loads."""
    with db.snapshot() as s:
        digest = get_release(s, release_id).digest
    folder = Path(cache) / digest
    if folder.is_dir() and files_digest(pack_files(folder)) == digest:
        return folder
    files = release_files(db, release_id)
    if files_digest(files) != digest:
        raise LedgerError(
            f"release {release_id}: its files do not add up to its digest {digest[:12]} — the "
            "stored pack was altered; do not use it"
        )
    Path(cache).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=cache))
    for rel, data in files.items():
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if folder.exists():
        shutil.rmtree(folder)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process put the same files there first
        shutil.rmtree(tmp, ignore_errors=True)
        if files_digest(pack_files(folder)) != digest:
            raise
    return folder


# --------------------------------------------------------------------- the sweep's check


def release_for_sweep(session: Session, digest: str) -> int | None:
    """The release a sweep with this pack digest is recorded under: the release in force.

    None while the ledger has no approved release (not governed yet). UnapprovedPack when
    a release is in force and the sweep used another pack.
    """
    cur = current_release(session)
    if cur is None:
        return None
    if digest == cur.digest:
        return cur.id
    same = session.execute(
        select(PackRelease).where(PackRelease.digest == digest)
        .order_by(PackRelease.id.desc()).limit(1)
    ).scalar_one_or_none()  # fmt: skip
    if same is None:
        what, todo = (
            f"{digest[:12]}, which was never submitted as a release",
            "submit the pack with `benefits rules submit`, have another officer approve it, "
            "then sweep again",
        )
    elif same.status == SUBMITTED:
        what = f"{describe(same)}, which is {_state(same)} and not approved yet"
        todo = f"have another officer approve release {same.id}, then sweep again"
    else:
        what = f"{describe(same)}, which is {_state(same)}"
        todo = "sweep again with the release in force (`benefits rules fetch current`)"
    raise UnapprovedPack(
        f"the rule pack used is {what}; only the approved release in force may pay "
        f"({describe(cur)}): {todo}"
    )


def pack_in_force(
    db: Database, configured: Path | None, cache: Path
) -> tuple[Path | None, int | None]:
    """The rule pack folder a sweep that will be recorded must use, and its release id.

    With a release in force: its files (from `cache`), or `configured` when that folder holds
    exactly the same pack; another configured pack is refused (UnapprovedPack). With no
    release yet: `configured` (None: the default pack) and no release.
    """
    with db.snapshot() as s:
        cur = current_release(s)
    if cur is None:
        return configured, None
    if configured is not None:
        try:
            digest = files_digest(pack_files(Path(configured)))
        except OSError as exc:
            raise InvalidInput(f"cannot read the rule pack {configured}: {exc}") from exc
        with db.snapshot() as s:
            release_for_sweep(s, digest)  # raises unless it is the release in force
        return Path(configured), cur.id
    return materialize(db, cur.id, cache), cur.id


# ------------------------------------------------------------------------------ changes


def submit(
    db: Database, folder: Path, by: str, note: str = "", reports: list[Report] | None = None
) -> PackRelease:
    """Store a pack folder as a new release, submitted for approval by another officer.

    The pack must load (the same validation as a sweep); one identical to the release in
    force, or to a release awaiting approval, is refused. The release in force at submission
    is recorded as its base: the diff and what-if compare against it.
    """
    from benefits.rulebook import load_pack

    folder = Path(folder)
    try:
        pack = load_pack(folder)
    except BenefitsError as exc:
        raise InvalidInput(f"{by} cannot submit {folder}: the pack does not load: {exc}") from exc
    files = pack_files(folder)
    digest = files_digest(files)
    if digest != pack.digest:  # pragma: no cover - the same files read twice
        raise Conflict(f"{folder} changed while it was read; submit it again")
    reports = list(reports or [])
    for r in reports:
        if r.kind not in REPORT_KINDS:
            raise InvalidInput(f"a report is a diff or a whatif, not {r.kind!r}")
        if len(r.content) > MAX_REPORT_BYTES:
            raise InvalidInput(f"the {r.kind} report {r.name} is larger than 20 MB")
    names = [r.name for r in reports]
    if len(set(names)) != len(names):
        raise InvalidInput("two reports have the same file name; rename one")
    with db.transaction() as s:
        cur = current_release(s)
        if cur is not None and cur.digest == digest:
            raise InvalidInput(
                f"{by} cannot submit {folder}: it is {describe(cur)}, the release in force"
            )
        pending = s.execute(
            select(PackRelease).where(PackRelease.digest == digest,
                                      PackRelease.status == SUBMITTED)
        ).scalars().first()  # fmt: skip
        if pending is not None:
            raise InvalidInput(
                f"{by} cannot submit {folder}: the same pack is {describe(pending)}, "
                f"{_state(pending)} and awaiting approval"
            )
        now = db.now()
        release = PackRelease(
            status=SUBMITTED, name=pack.info.name, version=pack.version, digest=digest,
            file_count=len(files), size=sum(len(b) for b in files.values()),
            note=(note or "").strip(), source=str(folder.resolve()),
            base_release_id=cur.id if cur else None,
            submitted_by=by, submitted_at=now,
        )  # fmt: skip
        s.add(release)
        s.flush()
        s.add_all(
            PackReleaseFile(release_id=release.id, path=p, sha256=_sha(b), content=b)
            for p, b in files.items()
        )
        for r in reports:
            s.add(PackReleaseReport(
                release_id=release.id, kind=r.kind, name=r.name, media_type=r.media_type,
                origin=r.origin, sha256=_sha(r.content), content=r.content, added_by=by,
                added_at=now,
            ))  # fmt: skip
        s.flush()
        audit.append(
            s, at=now, actor=by, action="rules.submit", object_type="release",
            object_id=release.id, after={
                **snapshot(release), "note": release.note, "source": release.source,
                "reports": [{"kind": r.kind, "name": r.name, "sha256": _sha(r.content),
                             "origin": r.origin} for r in reports],
            },
        )  # fmt: skip
        return release


def approve(db: Database, release_id: int, by: str) -> PackRelease:
    """Approve a submitted release (→ the release in force), as someone who did not submit it.

    Refused (FourEyesViolation) for its submitter, and (IllegalTransition) when the release in
    force changed since it was submitted: its diff and what-if compare against an older pack.
    """
    with db.transaction() as s:
        r = get_release(s, release_id, lock=True)
        obj = describe(r)
        if r.status != SUBMITTED:
            raise IllegalTransition("approve", by, obj, _state(r),
                                    "only a submitted release can be approved")  # fmt: skip
        if r.submitted_by == by:
            raise FourEyesViolation(
                "approve", by, obj, _state(r),
                f"{by} submitted it, and whoever prepares a rule change may not approve it "
                "(four eyes, handbook §6); another officer must approve",
            )  # fmt: skip
        cur = current_release(s)
        if (cur.id if cur else None) != r.base_release_id:
            base = f"release {r.base_release_id}" if r.base_release_id else "no release"
            now_in = describe(cur) if cur else "no release"
            raise IllegalTransition(
                "approve", by, obj, _state(r),
                f"it was submitted against {base} but {now_in} is in force now, so its diff "
                "and what-if are out of date; reject it and submit the pack again",
            )  # fmt: skip
        before = snapshot(r)
        generation = (s.execute(select(func.max(PackRelease.generation))).scalar() or 0) + 1
        now = db.now()
        done = s.execute(
            update(PackRelease)
            .where(PackRelease.id == r.id, PackRelease.status == SUBMITTED,
                   PackRelease.submitted_by != by)
            .values(status=APPROVED, approved_by=by, approved_at=now, generation=generation)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        if done.rowcount != 1:  # pragma: no cover - the row lock makes this unreachable
            raise Conflict(f"{obj} changed while {by} approved it; retry")
        s.refresh(r)
        audit.append(s, at=now, actor=by, action="rules.approve", object_type="release",
                     object_id=r.id, before=before, after=snapshot(r))  # fmt: skip
        return r


def reject(db: Database, release_id: int, by: str, reason: str) -> PackRelease:
    """Reject (or, by its submitter, withdraw) a submitted release, with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"{by} must give a reason to reject release {release_id}")
    with db.transaction() as s:
        r = get_release(s, release_id, lock=True)
        if r.status != SUBMITTED:
            raise IllegalTransition(
                "reject", by, describe(r), _state(r),
                "only a submitted release can be rejected"
                + ("; roll back the release in force with `benefits rules rollback`"
                   if r.status == APPROVED else ""),
            )  # fmt: skip
        before = snapshot(r)
        now = db.now()
        r.status, r.rejected_by, r.rejected_at, r.reject_reason = REJECTED, by, now, reason
        s.flush()
        audit.append(s, at=now, actor=by, action="rules.reject", object_type="release",
                     object_id=r.id, before=before,
                     after={**snapshot(r), "reason": reason})  # fmt: skip
        return r


@dataclass(frozen=True)
class Rollback:
    """The release taken out of force and the one in force again."""

    rolled_back: PackRelease
    in_force: PackRelease


def rollback(db: Database, by: str, reason: str) -> Rollback:
    """Emergency: take the release in force out (``rolled_back``, with a reason); the
    previous approved release is in force again. One step, audited (``rules.rollback``)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"{by} must give a reason to roll back the rule pack")
    with db.transaction() as s:
        cur = s.execute(
            select(PackRelease).where(PackRelease.status == APPROVED)
            .order_by(PackRelease.generation.desc()).limit(2).with_for_update()
        ).scalars().all()  # fmt: skip
        if not cur:
            raise InvalidInput("there is no approved rule pack release to roll back")
        if len(cur) < 2:
            raise IllegalTransition(
                "roll back", by, describe(cur[0]), _state(cur[0]),
                "it is the only approved release, so there is nothing to go back to; submit "
                "a corrected pack and have it approved",
            )  # fmt: skip
        out, back = cur
        before = snapshot(out)
        now = db.now()
        out.status, out.rolled_back_by, out.rolled_back_at = ROLLED_BACK, by, now
        out.rollback_reason = reason
        s.flush()
        audit.append(
            s, at=now, actor=by, action="rules.rollback", object_type="release",
            object_id=out.id, before=before,
            after={**snapshot(out), "reason": reason, "in_force": back.id,
                   "in_force_digest": back.digest},
        )  # fmt: skip
        return Rollback(out, back)
