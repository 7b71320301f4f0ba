"""Keys: the key file, the environment, the SQLite development default, and clear errors."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benefits.cli import app
from benefits.keys import ENV_FILE, KeyProblem, KeyRing, MissingKey, ledger_keys
from benefits.ledger import Ledger

runner = CliRunner()


def test_keys_init_writes_an_owner_only_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    result = runner.invoke(app, ["keys", "init", "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    for purpose in ("audit_hmac", "audit_signing", "blind_index"):
        current = data[purpose]["current"]
        assert len(base64.b64decode(data[purpose]["keys"][current])) == 32
        assert current in result.output
    ring = KeyRing.load(path)
    assert ring.current("audit_hmac")[0] == data["audit_hmac"]["current"]
    again = runner.invoke(app, ["keys", "init", "--out", str(path)])
    assert again.exit_code == 2 and "already exists" in again.output
    assert KeyRing.load(path).current("audit_hmac") == ring.current("audit_hmac")


def test_a_toml_key_file_and_an_environment_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = base64.b64encode(b"o" * 32).decode(), base64.b64encode(b"n" * 32).decode()
    path = tmp_path / "keys.toml"
    path.write_text(f'[audit_hmac]\n"ah-old" = "{old}"\n"ah-new" = "{new}"\n')
    monkeypatch.setenv(ENV_FILE, str(path))
    ring = ledger_keys("postgresql+psycopg://u@h/db")
    assert ring.current("audit_hmac") == ("ah-new", b"n" * 32)  # the last listed is current
    assert ring.get("audit_hmac", "ah-old") == b"o" * 32  # old keys still check old entries
    env = base64.b64encode(b"e" * 32).decode()
    monkeypatch.setenv("BENEFITS_KEY_BLIND_INDEX", f"bi-env:{env}")
    assert ledger_keys("postgresql+psycopg://u@h/db").current("blind_index") == (
        "bi-env", b"e" * 32
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"audit_hmac": {"k1": "not base64!"}}', "audit_hmac key k1 in"),
        ('{"audit_hmac": {"k1": "c2hvcnQ="}}', "has 5 bytes, it needs 32"),
        ('{"audit_hmac": {"current": "k2", "keys": {}}}', "names current key k2"),
        ('{"audit_hmac": {"k1": "c2hvcnQ="}', "not valid JSON or TOML"),
        ('{"payroll": {}}', "unknown purpose 'payroll'"),
    ],
)
def test_a_bad_key_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(text)
    with pytest.raises(KeyProblem, match=message.replace("(", r"\(")):
        KeyRing.load(path)


def test_a_missing_key_names_its_purpose_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_FILE)
    result = runner.invoke(app, ["ledger", "init", "--db", "sqlite:///:memory:"])
    assert result.exit_code == 2
    assert "no audit_hmac key: set BENEFITS_KEY_FILE" in result.output
    assert "Traceback" not in result.output
    only_hmac = tmp_path / "hmac-only.json"
    only_hmac.write_text(json.dumps({"audit_hmac": {"k1": base64.b64encode(b"k" * 32).decode()}}))
    monkeypatch.setenv(ENV_FILE, str(only_hmac))
    db = f"sqlite:///{tmp_path / 'l.sqlite'}"
    assert runner.invoke(app, ["ledger", "init", "--db", db]).exit_code == 0
    result = runner.invoke(app, ["audit", "checkpoint", "--to", str(tmp_path / "c"), "--db", db])
    assert result.exit_code == 2 and "no audit_signing key" in result.output
    monkeypatch.setenv(ENV_FILE, str(tmp_path / "gone.json"))
    result = runner.invoke(app, ["audit", "verify", "--db", db])
    assert result.exit_code == 2 and "cannot read the key file" in result.output


def test_a_sqlite_ledger_without_a_key_file_gets_one_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_FILE)
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:
        ledger.init(by="admin")
        assert ledger.verify_audit().ok
    keys = tmp_path / "ledger.sqlite.keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:  # read back, not replaced
        entry = ledger.audit_entries(1)[0]
        assert entry.key_id == KeyRing.load(keys).current("audit_hmac")[0]


def test_a_postgresql_ledger_without_keys_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_FILE)
    with pytest.raises(MissingKey, match="no audit_hmac key"):
        ledger_keys("postgresql+psycopg://u@h/db").current("audit_hmac")


def test_serve_and_users_add_without_keys_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FILE)
    db = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # refused before any connection
    for args in (["serve", "--db", db], ["users", "add", "x", "--role", "admin", "--db", db,
                                         "--password", "pw-123456789"]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "no audit_hmac key" in result.output and "Traceback" not in result.output


def test_keys_imports_first_and_its_examples_hold() -> None:
    """benefits.keys is imported by the ledger lazily: importing it first must work too."""
    import doctest
    import subprocess
    import sys

    import benefits.keys

    for module in ("benefits.keys", "benefits.ledger.checkpoints", "benefits.web.audit_events"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    result = doctest.testmod(benefits.keys, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 4
