"""The installed package works outside a clone (issue 11 point 8).

Builds the wheel from a copy of the source tree, installs it with ``--no-deps`` into a fresh
virtual environment whose dependencies come from this test environment's site-packages (a
``.pth`` file: nothing is downloaded, and the editable install of the clone cannot leak in —
``.pth`` files of an added directory are not processed), then, from an empty directory:

- ``benefits serve --demo`` seeds its ledger from the shipped sample, and its pages (the
  dashboard, the rules, a batch approval sheet from the shipped report templates) answer;
- ``benefits sweep --data <shipped sample> --month 2025-01`` runs with the shipped rule pack;
- the rule-case tests run against the installed package (the handbook's worked examples and
  the what-if cases; ``BENEFITS_WHEEL_CASES=all`` runs every case).
"""

from __future__ import annotations

import http.cookiejar
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.parse
import urllib.request
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("benefits", "rules", "reports", "datasets/sample", "pyproject.toml", "setup.py",
           "MANIFEST.in", "README.md")  # fmt: skip
CASES_SUBSET = "well_formed or examples/ or what_if/"


@dataclass
class Installed:
    """A fresh virtual environment with the wheel installed."""

    venv: Path
    python: Path
    script: Path
    env: dict[str, str]

    def run(self, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a command of the environment in `cwd`; fail the test with its output if it
        fails."""
        done = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done


def _can_build_without_isolation() -> bool:
    """True when this environment's setuptools builds wheels itself (bdist_wheel present)."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    try:
        from setuptools.command import bdist_wheel  # noqa: F401  (setuptools >= 70.1)
    except ImportError:
        return False
    return True


def _build_wheel(work: Path) -> Path:
    src, dist = work / "src", work / "dist"
    for name in SOURCES:
        source, target = ROOT / name, src / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)]
    if _can_build_without_isolation():
        command.insert(5, "--no-build-isolation")  # else pip fetches setuptools to build with
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = dist.glob("benefits-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel installed in a fresh venv, dependencies borrowed from this environment."""
    work = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(work)
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip())  # fmt: skip
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("BENEFITS_")}  # fmt: skip
    env.update(PYTHONNOUSERSITE="1", PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300, check=False, env=env, cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "benefits" / "__init__.py").is_file(), done.stdout + done.stderr
    # only now borrow the dependencies: pip must not see the clone's editable install there
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_borrowed_dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    yield Installed(env_dir, python, env_dir / "bin" / "benefits", env)


def _empty(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def test_the_package_imported_is_the_installed_wheel(installed: Installed, tmp_path: Path) -> None:
    """Not the clone: the module, the rule pack, the sample and the templates are in the venv."""
    out = installed.run(
        str(installed.python), "-c",
        "import benefits, benefits.web.app, polars; print(benefits.__file__)",
        cwd=_empty(tmp_path, "empty"),
    ).stdout.strip()  # fmt: skip
    assert Path(out).resolve().is_relative_to(installed.venv.resolve()), out
    paths = installed.run(str(installed.script), "paths", cwd=tmp_path / "empty").stdout
    for name in ("rules", "sample", "reports"):
        line = next(x for x in paths.splitlines() if x.startswith(name))
        folder = Path(line.split(maxsplit=1)[1])
        assert folder.is_relative_to(installed.venv.resolve()) and any(folder.iterdir()), line


def test_sweep_of_the_shipped_sample_with_the_default_pack(
    installed: Installed, tmp_path: Path
) -> None:
    cwd = _empty(tmp_path, "empty")
    sample = installed.run(str(installed.script), "paths", "sample", cwd=cwd).stdout.strip()
    installed.run(str(installed.script), "sweep", "--data", sample, "--month", "2025-01",
                  "--out", "out", "--quiet", cwd=cwd)  # fmt: skip
    summary = json.loads((cwd / "out" / "summary.json").read_text(encoding="utf-8"))
    assert Path(summary["rule_pack"]["folder"]).is_relative_to(installed.venv.resolve())
    assert summary["totals"]["entitlements"] > 0 and summary["tables"]["persons"]["read"] > 0
    # the shipped pack is the repository's pack, byte for byte
    from benefits.rulebook import load_pack

    assert summary["rule_pack"]["hash"] == load_pack(ROOT / "rules").digest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sign_in(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    page = opener.open(f"{base}/login", timeout=30).read().decode()
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token, page[:300]
    form = urllib.parse.urlencode({"username": username, "password": password,
                                   "token": token.group(1), "next": "/dashboard"})  # fmt: skip
    landed = opener.open(f"{base}/login", data=form.encode(), timeout=30)
    assert landed.geturl().endswith("/dashboard"), landed.geturl()
    return opener


def test_demo_serves_from_an_empty_directory(installed: Installed, tmp_path: Path) -> None:
    """`benefits serve --demo` seeds two months from the shipped sample and serves pages."""
    cwd = _empty(tmp_path, "empty")
    port = _free_port()
    log = cwd.parent / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [str(installed.script), "serve", "--demo", "--port", str(port)],
            cwd=cwd, env=installed.env, stdout=sink, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 240
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=5)
                    break
                except OSError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.3)
            printed = log.read_text()
            password = re.search(r"^\s+approver\s+(\S+)", printed, re.MULTILINE)
            assert password, printed
            approver = _sign_in(base, "approver", password.group(1))
            dashboard = approver.open(f"{base}/dashboard", timeout=30).read().decode()
            assert "2025-01" in dashboard
            rules = approver.open(f"{base}/rules", timeout=30).read().decode()
            assert "高龄津贴" in rules
            sheet = approver.open(f"{base}/batches/2/sheet", timeout=30).read().decode()
            assert "审批单" in sheet and "审核人（签字）" in sheet
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert (cwd / "out" / "demo" / "demo.sqlite").is_file()


def test_rule_cases_against_the_installed_package(installed: Installed, tmp_path: Path) -> None:
    cwd = _empty(tmp_path, "empty")
    tests = cwd / "tests"
    tests.mkdir()
    for name in ("__init__.py", "casekit.py", "test_rule_cases.py"):
        shutil.copy2(ROOT / "tests" / name, tests / name)
    shutil.copytree(ROOT / "tests" / "cases", tests / "cases")
    select = [] if os.environ.get("BENEFITS_WHEEL_CASES") == "all" else ["-k", CASES_SUBSET]
    done = installed.run(str(installed.python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "tests/test_rule_cases.py", *select, cwd=cwd)  # fmt: skip
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= 10 and "failed" not in done.stdout, done.stdout
