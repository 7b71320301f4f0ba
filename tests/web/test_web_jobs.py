"""Background jobs started from the web app: progress, result, failure, one at a time.

A job's work runs on a worker thread; its state lives in ``web_jobs`` (any process shows it).
These tests hold the work on an event to look at a running job, then let it finish or fail.
"""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from conftest import Seeded, csrf_of
from sqlalchemy import update

from benefits.ledger.errors import InvalidInput
from benefits.web.jobs import INTERNAL, JobResult, JobRunning, Report
from benefits.web.models import WebJob


def _flash(response) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'data-flash="(\w+)">([^<]*)<', response.text)
    return f"{found.group(1)}: {found.group(2)}" if found else ""


def _held_job(seeded: Seeded, key: str = "test:1", by: str = "officer"):  # type: ignore[no-untyped-def]
    """A running job that reports progress, then waits for `go`; (job, go, reported)."""
    go, reported = threading.Event(), threading.Event()

    def work(report: Report) -> JobResult:
        report("counting the items", 1, 3)
        reported.set()
        assert go.wait(30)
        report("writing the file", 2, 3)
        return JobResult("42 items counted / 42 items counted", url="/batches")

    job = seeded.ctx.jobs.start("sweep", key, "test job", by, work)
    assert reported.wait(30)
    return job, go


def test_a_job_shows_its_progress_then_its_result(seeded: Seeded) -> None:
    jobs = seeded.ctx.jobs
    job, go = _held_job(seeded)
    running = jobs.get(job.id)
    assert (running.status, running.stage, running.done, running.total) == (
        "running", "counting the items", 1, 3)  # fmt: skip
    officer = seeded.client("officer")
    page = officer.get(f"/jobs?id={job.id}")
    assert page.status_code == 200
    assert 'http-equiv="refresh"' in page.text and 'data-job-status="running"' in page.text
    assert "counting the items · 1 / 3" in page.text
    # still running: following it stays on the job's page
    assert officer.get(f"/jobs?id={job.id}&follow=1", follow_redirects=False).status_code == 200

    go.set()
    done = jobs.wait(job.id)
    assert done.status == "done" and done.finished_at is not None
    page = officer.get(f"/jobs?id={job.id}")
    assert 'data-job-status="done"' in page.text and 'http-equiv="refresh"' not in page.text
    assert "42 items counted" in page.text and 'href="/batches"' in page.text
    r = officer.get(f"/jobs?id={job.id}&follow=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/batches"
    listing = officer.get("/jobs").text
    assert f'href="/jobs?id={job.id}"' in listing and "test job" in listing


def test_a_second_start_is_refused_while_the_first_runs(seeded: Seeded) -> None:
    jobs = seeded.ctx.jobs
    job, go = _held_job(seeded, key="sweep:2099-01")
    with pytest.raises(JobRunning) as refused:
        jobs.start("sweep", "sweep:2099-01", "test job", "approver",
                   lambda report: JobResult("never"))  # fmt: skip
    assert refused.value.job_id == job.id and "already running" in str(refused.value)
    other = jobs.start("sweep", "sweep:2099-02", "another month", "officer",
                       lambda report: JobResult("other month done"))  # fmt: skip
    assert jobs.wait(other.id).status == "done"  # another key is not blocked
    go.set()
    assert jobs.wait(job.id).status == "done"
    again = jobs.start("sweep", "sweep:2099-01", "test job", "officer",
                       lambda report: JobResult("second run"))  # fmt: skip
    assert again.id != job.id and jobs.wait(again.id).status == "done"


def test_a_failed_job_shows_the_error_and_leaks_nothing(seeded: Seeded) -> None:
    jobs = seeded.ctx.jobs

    def refused(report: Report) -> JobResult:
        report("reading the delivery")
        raise InvalidInput("the delivery for 2099-01 has no persons extract")

    def crashed(report: Report) -> JobResult:
        raise RuntimeError("330106194501011233 failed in the middle")

    first = jobs.wait(jobs.start("sweep", "k:1", "refused job", "officer", refused).id)
    assert first.status == "failed"
    assert first.error == "the delivery for 2099-01 has no persons extract"
    page = seeded.client("officer").get(f"/jobs?id={first.id}&follow=1")
    assert 'data-job-status="failed"' in page.text
    assert "has no persons extract" in page.text
    second = jobs.wait(jobs.start("sweep", "k:2", "crashed job", "officer", crashed).id)
    assert second.status == "failed" and second.error == INTERNAL
    page = seeded.client("officer").get(f"/jobs?id={second.id}")
    assert "330106194501011233" not in page.text and "internal error" in page.text


def test_a_job_whose_process_died_does_not_lock_it_out(seeded: Seeded) -> None:
    jobs, db = seeded.ctx.jobs, seeded.ctx.db
    job, go = _held_job(seeded, key="sweep:2099-03")
    go.set()
    jobs.wait(job.id)
    long_ago = db.now() - dt.timedelta(hours=1)
    with db.transaction() as s:  # as a process killed mid-job leaves it
        s.execute(update(WebJob).where(WebJob.id == job.id)
                  .values(status="running", updated_at=long_ago, finished_at=None))  # fmt: skip
    fresh = jobs.start("sweep", "sweep:2099-03", "test job", "officer",
                       lambda report: JobResult("after the crash"))  # fmt: skip
    assert jobs.wait(fresh.id).status == "done"
    dead = jobs.get(job.id)
    assert dead.status == "failed" and "server stopped" in (dead.error or "")


def test_jobs_are_seen_by_who_may_see_them(seeded: Seeded) -> None:
    job, go = _held_job(seeded, key="sweep:2099-04", by="officer")
    go.set()
    seeded.ctx.jobs.wait(job.id)
    assert seeded.client("auditor").get(f"/jobs?id={job.id}").status_code == 404
    assert seeded.client("officer").get(f"/jobs?id={job.id}").status_code == 200
    assert seeded.client().get(f"/jobs?id={job.id}", follow_redirects=False).status_code == 303


def test_the_sweep_page_runs_the_sweep_in_the_background(seeded: Seeded) -> None:
    officer = seeded.client("officer")
    csrf = csrf_of(officer)
    r = officer.post("/sweeps", data={"csrf_token": csrf, "month": "2025-02"},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    found = re.fullmatch(r"/jobs\?id=(\d+)&follow=1", r.headers["location"])
    assert found, r.headers["location"]
    job_id = int(found.group(1))
    # the same month again while it runs (or just after): refused, or reused once recorded
    again = officer.post("/sweeps", data={"csrf_token": csrf, "month": "2025-02"})
    assert ("already running" in _flash(again)) or ("reused" in _flash(again))
    job = seeded.ctx.jobs.wait(job_id, timeout=120)
    assert job.status == "done", job.error
    r = officer.get(f"/jobs?id={job_id}&follow=1", follow_redirects=False)
    assert r.status_code == 303 and re.fullmatch(r"/runs/\d+", r.headers["location"])
    page = officer.get(r.headers["location"])
    assert "sweep of 2025-02 recorded as run" in _flash(page)
    assert seeded.ctx.ledger.runs()[0].month == "2025-02"


def test_a_large_pdf_is_built_in_the_background(seeded: Seeded) -> None:
    batch = seeded.ctx.ledger.batches()[0]
    auditor = seeded.client("auditor")
    r = auditor.post(f"/batches/{batch.id}/sheet-job", data={"csrf_token": csrf_of(auditor)},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    job_id = int(r.headers["location"].split("=")[1])
    job = seeded.ctx.jobs.wait(job_id, timeout=120)
    assert job.status == "done", job.error
    page = auditor.get(f"/jobs?id={job_id}")
    assert 'id="job-download"' in page.text
    pdf = auditor.get(f"/jobs/download?id={job_id}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert seeded.client("officer").get(f"/jobs/download?id={job_id}").status_code == 404
    missing = auditor.post("/batches/999999/sheet-job", data={"csrf_token": csrf_of(auditor)})
    assert "no batch 999999" in _flash(missing)


def test_the_web_refuses_a_second_sweep_of_a_month_while_one_runs(seeded: Seeded) -> None:
    """Deterministic: that month's sweep job is held running; the page says so and links it."""
    job, go = _held_job(seeded, key="sweep:2025-02")
    officer = seeded.client("officer")
    r = officer.post("/sweeps", data={"csrf_token": csrf_of(officer), "month": "2025-02"},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/jobs?id={job.id}"
    page = officer.get(r.headers["location"])
    assert "already running" in _flash(page) and 'data-job-status="running"' in page.text
    go.set()
    assert seeded.ctx.jobs.wait(job.id).status == "done"
