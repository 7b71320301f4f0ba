"""The rules worker: durable_rules in a supervised child process, restarted when it dies.

durable_rules' C extension can crash the whole process (``delete_state`` segfaulted here)
and holds the GIL while it matches. So the engine runs in a child process that keeps no
state of its own beyond the compiled rulesets: the service sends the facts of the households
to decide, the worker sends back the decisions. If the child dies mid-request (a segfault, a
kill, an out-of-memory), the supervisor starts a new one and sends the same request again —
which is safe because a request changes nothing in the worker. A request that kills the
worker every time (a poison event) fails after ``max_attempts`` with :class:`WorkerFailed`,
and the service puts the event in the dead-letter file instead of applying it.

:class:`LocalEvaluator` runs the same code in-process (tests, small tools);
:class:`WorkerEvaluator` is the supervised one the service uses by default.

Example:
    >>> with WorkerEvaluator() as ev:                           # doctest: +SKIP
    ...     response = ev.evaluate(EvalRequest(program, None, [HouseholdInput(facts)]))
    >>> ev.restarts                                             # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from benefits.errors import RuleError
from benefits.evaluate import PAID_PREV, PAY_MODES_PREV
from benefits.events.decide import Alert, MonthDecider, PersonOutcome
from benefits.events.program import MonthProgram


class WorkerFailed(RuntimeError):
    """The rules worker died on every attempt at a request."""


@dataclass
class HouseholdInput:
    """One household to decide: its members' facts for M, and for M−1 when someone died then."""

    facts: list[dict[str, Any]]
    prev_facts: list[dict[str, Any]] | None = None
    died_prev: tuple[str, ...] = ()


@dataclass
class EvalRequest:
    """Households to decide for a month (and the month before, for deaths).

    The programs travel to the worker once; after that a request names them by key.
    """

    program: MonthProgram | str
    prev_program: MonthProgram | str | None
    households: list[HouseholdInput]
    traces: bool = False
    quarantine: list[dict[str, Any]] | None = None


@dataclass
class EvalResponse:
    outcomes: list[list[PersonOutcome]]
    quarantine_alerts: list[Alert] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


class Evaluator(Protocol):
    """Decides households; the service does not care where."""

    def evaluate(self, request: EvalRequest) -> EvalResponse: ...

    def close(self) -> None: ...


class RuleWorker:
    """The decision code with its engine and compiled months (lives in the worker)."""

    def __init__(self, engine: str = "durable_rules") -> None:
        from benefits.events.adapter import make_engine

        self.engine = make_engine(engine)
        self.deciders: dict[str, MonthDecider] = {}

    def decider(self, program: MonthProgram | str) -> MonthDecider:
        """The compiled month (compiled on first sight; a key must have been seen before)."""
        if isinstance(program, str):
            return self.deciders[program]
        found = self.deciders.get(program.key)
        if found is None:
            found = self.deciders[program.key] = MonthDecider(program, self.engine)
        return found

    def run(self, request: EvalRequest) -> EvalResponse:
        decider = self.decider(request.program)
        prev = self.decider(request.prev_program) if request.prev_program else None
        outcomes = []
        for hh in request.households:
            if hh.died_prev:
                paid = (
                    prev.paid_ids(hh.prev_facts, PAY_MODES_PREV)
                    if prev is not None and hh.prev_facts
                    else set()
                )
                for f in hh.facts:
                    f[PAID_PREV] = f["id_no"] in hh.died_prev and f["id_no"] in paid
            outcomes.append(decider.decide(hh.facts, traces=request.traces))
        alerts = decider.quarantine_alerts(request.quarantine) if request.quarantine else []
        stats = dict(getattr(self.engine, "stats", {}))
        return EvalResponse(outcomes, alerts, stats)


class LocalEvaluator:
    """Runs the rule engine in this process (no crash isolation)."""

    def __init__(self, engine: str = "durable_rules") -> None:
        self.worker = RuleWorker(engine)
        self.restarts = 0

    def evaluate(self, request: EvalRequest) -> EvalResponse:
        return self.worker.run(request)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------- the child


def _fault(path: str | None) -> None:
    """Test hook: crash, hang or fail as the fault file says (read before every request)."""
    if not path or not os.path.exists(path):
        return
    what = Path(path).read_text().strip()
    if what.endswith("-once"):
        os.unlink(path)
    if what.startswith("segfault"):
        ctypes.string_at(0)  # a real crash in C code, as durable_rules' were
    elif what.startswith("exit"):
        os._exit(3)
    elif what.startswith("hang"):
        time.sleep(3600)


def _child_main(conn: Any, engine: str, fault_file: str | None) -> None:
    """The worker process: receive (kind, seq, payload), answer (status, seq, result)."""
    worker = RuleWorker(engine)
    while True:
        try:
            kind, seq, payload = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            return
        if kind == "ping":
            conn.send(("ok", seq, os.getpid()))
            continue
        _fault(fault_file)
        try:
            for program in payload["programs"]:
                worker.decider(program)
            result = worker.run(payload["request"])
            conn.send(("ok", seq, result))
        except RuleError as exc:
            conn.send(("rule_error", seq, str(exc)))
        except Exception as exc:  # reported, not fatal: the parent decides
            conn.send(("error", seq, f"{type(exc).__name__}: {exc}"))


def _key(program: MonthProgram | str | None) -> str | None:
    return program.key if isinstance(program, MonthProgram) else program


def main(argv: list[str] | None = None) -> None:
    """``python -m benefits.events.worker --fd N``: serve requests on the inherited socket."""
    parser = argparse.ArgumentParser(prog="benefits-rules-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--engine", default="durable_rules")
    parser.add_argument("--fault-file", default=None)
    args = parser.parse_args(argv)
    _child_main(Connection(args.fd), args.engine, args.fault_file)


# -------------------------------------------------------------------------- the supervisor


class WorkerEvaluator:
    """Supervises the rules worker process: starts it, restarts it, replays requests.

    Args:
        engine: rule engine name (``durable_rules``).
        timeout: seconds a request may take before the worker is killed and restarted.
        max_attempts: attempts per request (the first included) before :class:`WorkerFailed`.
        fault_file: tests only — a file whose content makes the worker crash (see `_fault`).
    """

    def __init__(
        self,
        engine: str = "durable_rules",
        *,
        timeout: float = 60.0,
        max_attempts: int = 3,
        fault_file: str | Path | None = None,
    ) -> None:
        self.engine = engine
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.fault_file = str(fault_file) if fault_file else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Any = None
        self._loaded: set[str] = set()
        self._seq = 0
        self._lock = threading.Lock()
        self.starts = 0
        self.restarts = 0  # workers replaced because they died or hung
        self.crashes: list[str] = []

    @property
    def pid(self) -> int | None:
        """The worker's process id (None when no worker runs)."""
        return self._proc.pid if self._alive() else None

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> int:
        """Start the worker now (it is otherwise started on first use); return its pid."""
        with self._lock:
            self._ensure()
            assert self._proc is not None
            return self._proc.pid

    def _ensure(self) -> None:
        if self._alive():
            return
        if self._proc is not None:
            self._discard()
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "benefits.events.worker", "--fd", str(theirs.fileno()),
                   "--engine", self.engine]  # fmt: skip
        if self.fault_file:
            command += ["--fault-file", self.fault_file]
        try:
            # a fresh interpreter: nothing of the caller (its threads, its __main__) comes along
            self._proc = subprocess.Popen(
                command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
            )
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._loaded = set()
        self.starts += 1

    def _discard(self) -> None:
        """Drop a worker that died, hung or answered nonsense (it is replaced on next use)."""
        self.restarts += 1
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            code = self._proc.returncode
            self.crashes.append(f"worker {self._proc.pid} ended with exit code {code}")
        self._proc = None
        self._conn = None

    def evaluate(self, request: EvalRequest) -> EvalResponse:
        """Decide the request in the worker, restarting it as often as needed (see class)."""
        with self._lock:
            last = "no attempt made"
            for _attempt in range(self.max_attempts):
                self._ensure()
                programs = [
                    p for p in (request.program, request.prev_program)
                    if isinstance(p, MonthProgram) and p.key not in self._loaded
                ]  # fmt: skip
                wire = replace(request, program=_key(request.program),
                               prev_program=_key(request.prev_program))  # fmt: skip
                self._seq += 1
                seq = self._seq
                try:
                    self._conn.send(("eval", seq, {"programs": programs, "request": wire}))
                    if not self._conn.poll(self.timeout):
                        last = f"no answer within {self.timeout:g} s"
                        self._discard()
                        continue
                    status, got, result = self._conn.recv()
                except (EOFError, OSError) as exc:
                    last = f"the worker died ({type(exc).__name__})"
                    self._discard()
                    last += f"; {self.crashes[-1]}" if self.crashes else ""
                    continue
                if got != seq:  # pragma: no cover - one request at a time under the lock
                    self._discard()
                    last = "answer out of sequence"
                    continue
                self._loaded.update(p.key for p in programs)
                if status == "ok":
                    return result
                if status == "rule_error":
                    raise RuleError(result)
                raise RuntimeError(f"rules worker: {result}")
            raise WorkerFailed(
                f"the rules worker died on {self.max_attempts} attempts at this request "
                f"({last})"
            )

    def close(self) -> None:
        """Stop the worker."""
        with self._lock:
            if self._alive() and self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send(("stop", 0, None))
            if self._proc is not None:
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.close()
            self._proc = None
            self._conn = None

    def __enter__(self) -> WorkerEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    # run the module under its own name, so what it sends unpickles as benefits.events.worker.*
    from benefits.events import worker as _worker

    _worker.main()
