"""The releases page: submit a zipped pack, four eyes, reject, rollback; the rules page's
parameter calendar; the yearly-parameter notice for admins."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path

from conftest import Seeded, csrf_of

from benefits.rulebook import default_rules_folder, pack_digest


def zipped(folder: Path, top: str = "rules") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(folder.rglob("*.yaml")):
            z.write(p, f"{top}/{p.relative_to(folder).as_posix()}")
    return buf.getvalue()


def pack_with_2026_dibao(dest: Path) -> Path:
    shutil.copytree(default_rules_folder(), dest)
    path = dest / "parameters" / "assistance.yaml"
    old = "values: {2022-07-01: 1216, 2023-07-01: 1259, 2025-01-23: 1301}"
    path.write_text(path.read_text("utf-8").replace(old, old[:-1] + ", 2026-01-01: 1400}"),
                    "utf-8")  # fmt: skip
    return dest


def flash(client, response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.text[:300]
    page = client.get(response.headers["location"])
    found = re.search(r'data-flash="(\w+)">([^<]*)<', page.text)
    return f"{found.group(1)}: {found.group(2)}" if found else ""


def test_submit_four_eyes_approve_reject_and_rollback(seeded: Seeded, tmp_path: Path) -> None:
    chief, approver = seeded.client("chief"), seeded.client("approver")
    page = chief.get("/releases")
    assert page.status_code == 200 and "data-no-release" in page.text
    token = csrf_of(chief)
    r = chief.post("/releases", data={"csrf_token": token, "note": "current pack"},
                   files={"pack": ("rules.zip", zipped(default_rules_folder()), "application/zip"),
                          "diff_report": ("diff.md", b"no change: first release", "text/markdown")},
                   follow_redirects=False)  # fmt: skip
    assert flash(chief, r).startswith("ok")
    assert r.headers["location"] == "/releases/1"
    detail = chief.get("/releases/1").text
    assert "data-four-eyes" in detail and 'id="approve-release"' not in detail
    assert "no change: first release" in detail and "pack.yaml" in detail
    # the submitter posting approve anyway is refused by the ledger (four eyes)
    r = chief.post("/releases/1/approve", data={"csrf_token": token}, follow_redirects=False)
    assert "four eyes" in flash(chief, r)
    assert seeded.ctx.ledger.release_in_force() is None
    # an auditor may not approve at all
    auditor = seeded.client("auditor")
    assert auditor.post("/releases/1/approve", data={"csrf_token": csrf_of(auditor)},
                        follow_redirects=False).status_code == 403  # fmt: skip

    a_token = csrf_of(approver)
    assert 'id="approve-release"' in approver.get("/releases/1").text
    r = approver.post("/releases/1/approve", data={"csrf_token": a_token}, follow_redirects=False)
    assert flash(approver, r).startswith("ok")
    assert seeded.ctx.ledger.release_in_force().id == 1  # type: ignore[union-attr]

    v2 = pack_with_2026_dibao(tmp_path / "v2")
    r = chief.post("/releases", data={"csrf_token": token},
                   files={"pack": ("v2.zip", zipped(v2, "v2"), "application/zip")},
                   follow_redirects=False)  # fmt: skip
    assert flash(chief, r).startswith("ok")
    detail = approver.get("/releases/2").text
    assert 'data-change="dibao_std"' in detail and "1400" in detail
    assert "in force before: 1301" in detail
    r = approver.post("/releases/2/reject", data={"csrf_token": a_token, "reason": ""},
                      follow_redirects=False)  # fmt: skip
    assert "reason" in flash(approver, r)
    r = chief.post("/releases", data={"csrf_token": token},
                   files={"pack": ("bad.zip", b"not a zip", "application/zip")},
                   follow_redirects=False)  # fmt: skip
    assert ".zip" in flash(chief, r)
    r = approver.post("/releases/2/approve", data={"csrf_token": a_token}, follow_redirects=False)
    assert flash(approver, r).startswith("ok")
    assert pack_digest(v2) == seeded.ctx.pack.digest  # the site uses the release in force

    rules = approver.get("/rules").text
    assert 'href="/releases/2"' in rules
    row = rules[rules.index('id="cal-dibao_std"') :]
    row = row[: row.index("</tr>")]
    assert "2025-01-23 → <strong>1301</strong> · 2025-01 – 2025-12" in row
    assert "2026-01-01 → <strong>1400</strong> · from 2026-01" in row

    r = approver.post("/releases/rollback", data={"csrf_token": a_token, "reason": "typo"},
                      follow_redirects=False)  # fmt: skip
    assert flash(approver, r).startswith("ok")
    assert seeded.ctx.ledger.release_in_force().id == 1  # type: ignore[union-attr]
    assert seeded.ctx.pack.digest == pack_digest(default_rules_folder())
    officer = seeded.client("officer")
    assert officer.post("/releases/rollback", data={"csrf_token": csrf_of(officer),
                        "reason": "x"}, follow_redirects=False).status_code == 403  # fmt: skip
    actions = [e.action for e in seeded.ctx.ledger.audit_entries(50)]
    assert {"rules.submit", "rules.approve", "rules.rollback",
            "security.approval_refused"} <= set(actions)  # fmt: skip


def test_admins_see_a_yearly_parameter_missing(seeded: Seeded) -> None:
    # the bundled pack's prov_urban_income (yearly) stops at 2025: missing for the years after
    admin = seeded.client("admin")
    page = admin.get("/releases").text
    assert 'data-yearly-missing="prov_urban_income"' in page
    assert "data-yearly-missing" not in seeded.client("officer").get("/releases").text
