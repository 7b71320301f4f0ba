"""Background jobs: long work started from the web app runs beside the request, not in it.

A sweep, the PDF of a large batch: the request records a job (``web_jobs``) and returns at
once; a worker thread does the work and reports its progress (a stage, and how far along
when it knows) into the job's row, then its result — a message and the page to go to, or a
file to download — or the error, as one line shown to the officer. The officer can leave and
come back to the job's page (``/jobs?id=N``); any process of the app shows it, since the
state lives in the ledger's database.

One running job per *key* (``sweep:2025-01``, ``sheet:12``): the unique index
``uq_web_jobs_running`` refuses a second start, from this process or another, while the
first runs (:class:`JobRunning` names it). A worker beats every few seconds; a running job
not heard of for :data:`STALE_SECONDS` (its process died) is marked failed when someone
starts it again, so a crash never locks a job out for good.

Example:
    >>> job = ctx.jobs.start("sweep", "sweep:2025-01", "sweep of 2025-01", "alice",
    ...                      lambda report: do_the_sweep(report))      # doctest: +SKIP
    >>> ctx.jobs.wait(job.id).status                                     # doctest: +SKIP
    'done'
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from benefits.errors import BenefitsError
from benefits.ledger.db import Database
from benefits.ledger.errors import Conflict, LedgerError, NotFound
from benefits.web.models import JOB_DONE, JOB_FAILED, JOB_RUNNING, WebJob

log = logging.getLogger("benefits.web.jobs")

BEAT_SECONDS = 2.0  # how often a worker writes its progress (and proves it is alive)
STALE_SECONDS = 120.0  # a running job not heard of for this long has lost its process
INTERNAL = "the job stopped on an internal error (logged on the server); nothing half-done"


class JobRunning(Conflict):
    """A job with the same key is running; `job_id` is that job."""

    def __init__(self, message: str, job_id: int) -> None:
        super().__init__(message)
        self.job_id = job_id


@dataclass
class JobResult:
    """What a finished job gives the officer: a message, a page to go to, a file."""

    message: str
    url: str | None = None
    file: str | None = None
    filename: str | None = None
    media_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Report:
    """The progress callback handed to a job's work: ``report(stage, done=None, total=None)``.

    Writes are throttled to one every :data:`BEAT_SECONDS` (the last one always lands), so a
    job may report as often as it likes.
    """

    def __init__(self, jobs: Jobs, job_id: int) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.stage: str | None = None
        self.done = 0
        self.total: int | None = None
        self._written = 0.0

    def __call__(self, stage: str | None = None, done: int | None = None,
                 total: int | None = None) -> None:  # fmt: skip
        if stage is not None:
            self.stage = stage
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        now = time.monotonic()
        if stage is not None or now - self._written >= BEAT_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the current progress (and the heartbeat) to the job's row."""
        self._written = time.monotonic()
        with self.jobs.db.transaction() as s:
            s.execute(
                update(WebJob)
                .where(WebJob.id == self.job_id, WebJob.status == JOB_RUNNING)
                .values(stage=self.stage, done=self.done, total=self.total,
                        updated_at=self.jobs.db.now())
                .execution_options(synchronize_session=False)
            )  # fmt: skip


Work = Callable[[Report], JobResult]


def _one_line(exc: BaseException) -> str:
    """The message an officer sees: the engine's own one-line errors; nothing else leaks."""
    if isinstance(exc, LedgerError | BenefitsError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return INTERNAL


class Jobs:
    """Starts jobs on worker threads and reads their state from the database."""

    def __init__(self, db: Database, folder: Path) -> None:
        self.db = db
        self.folder = Path(folder)
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def _mark_stale(self, key: str) -> None:
        cutoff = self.db.now() - dt.timedelta(seconds=STALE_SECONDS)
        with self.db.transaction() as s:
            s.execute(
                update(WebJob)
                .where(WebJob.key == key, WebJob.status == JOB_RUNNING,
                       WebJob.updated_at < cutoff)
                .values(status=JOB_FAILED, finished_at=self.db.now(),
                        error="the server stopped while this job ran; start it again")
                .execution_options(synchronize_session=False)
            )  # fmt: skip

    def running(self, key: str) -> WebJob | None:
        """The running job with this key, if any."""
        with self.db.snapshot() as s:
            return s.execute(
                select(WebJob).where(WebJob.key == key, WebJob.status == JOB_RUNNING)
            ).scalar_one_or_none()

    def start(
        self, kind: str, key: str, title: str, by: str, work: Work, *, retry: bool = True
    ) -> WebJob:
        """Record a running job and start `work` on a worker thread; JobRunning when a job
        with the same key runs (in any process)."""
        self._mark_stale(key)
        now = self.db.now()
        try:
            with self.db.transaction() as s:
                job = WebJob(kind=kind, key=key, title=title, status=JOB_RUNNING, done=0,
                             total=None, stage="waiting to start", started_by=by,
                             started_at=now, updated_at=now)  # fmt: skip
                s.add(job)
                s.flush()
                s.expunge(job)
        except IntegrityError as exc:
            other = self.running(key)
            if other is None and retry:  # it finished between our insert and this read
                return self.start(kind, key, title, by, work, retry=False)
            if other is None:
                raise
            raise JobRunning(
                f"{title} is already running (job {other.id}, started by {other.started_by}); "
                "wait for it to finish — its page shows how far it is",
                other.id,
            ) from exc
        thread = threading.Thread(target=self._run, args=(job.id, work), daemon=True,
                                  name=f"job-{job.id}")  # fmt: skip
        with self._lock:
            self._threads[job.id] = thread
        thread.start()
        return job

    def _run(self, job_id: int, work: Work) -> None:
        report = Report(self, job_id)
        try:
            report("started")
            result = work(report)
        except Exception as exc:
            if not isinstance(exc, LedgerError | BenefitsError):
                log.exception("job %s failed", job_id)
            self._finish(job_id, JOB_FAILED, error=_one_line(exc))
        else:
            payload = {"message": result.message, "url": result.url, "file": result.file,
                       "filename": result.filename, "media_type": result.media_type,
                       **result.extra}  # fmt: skip
            self._finish(
                job_id,
                JOB_DONE,
                result=json.dumps(payload, ensure_ascii=False),
                stage="done",
                done=report.total or report.done,
                total=report.total,
            )
        finally:
            with self._lock:
                self._threads.pop(job_id, None)

    def _finish(self, job_id: int, status: str, **values: Any) -> None:
        try:
            with self.db.transaction() as s:
                s.execute(
                    update(WebJob).where(WebJob.id == job_id, WebJob.status == JOB_RUNNING)
                    .values(status=status, finished_at=self.db.now(),
                            updated_at=self.db.now(), **values)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
        except Exception:  # the database went away (the app is closing): nothing to tell
            log.exception("job %s: its end could not be recorded", job_id)

    def get(self, job_id: int) -> WebJob:
        """The job with this id, or NotFound."""
        with self.db.snapshot() as s:
            job = s.get(WebJob, job_id)
            if job is None:
                raise NotFound(f"there is no job {job_id}")
            s.expunge(job)
            return job

    def recent(self, by: str | None, limit: int = 50) -> list[WebJob]:
        """The newest jobs (of one officer when `by`), newest first."""
        with self.db.snapshot() as s:
            q = select(WebJob).order_by(WebJob.id.desc()).limit(limit)
            if by is not None:
                q = q.where(WebJob.started_by == by)
            jobs = list(s.execute(q).scalars())
            for j in jobs:
                s.expunge(j)
            return jobs

    def wait(self, job_id: int, timeout: float = 60.0) -> WebJob:
        """Block until the job is no longer running (tests, the CLI); the job."""
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status != JOB_RUNNING or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    def wait_all(self, timeout: float = 60.0) -> None:
        """Wait for every job this process started (the app closing)."""
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout)


def result_of(job: WebJob) -> dict[str, Any]:
    """A finished job's result as stored ({} while it runs or when it failed)."""
    try:
        return json.loads(job.result) if job.result else {}
    except ValueError:
        return {}
