"""schemathesis against the OpenAPI schema: generated requests never cause a server error.

Runs in-process (ASGI) with an API token of a user holding every role and the pii grant,
bounded to a few examples per operation so CI stays fast. Hypothesis drives each operation
directly (one test, every operation) rather than through schemathesis' pytest plugin.
"""

from __future__ import annotations

import time

import schemathesis
from conftest import PASSWORDS, Seeded
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

EXAMPLES = 15


def test_api_never_fails_with_a_server_error(seeded: Seeded) -> None:
    ctx = seeded.ctx
    ctx.accounts.create_user("fuzzer", PASSWORDS["admin"], ["officer", "approver", "auditor",
                                                            "admin"], pii=True, by="admin")
    headers = {"Authorization": f"Bearer {seeded.token('fuzzer')}"}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", seeded.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25

    timings: dict[str, float] = {}
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            if case.path == "/api/v1/sweeps" and isinstance(case.body, dict):
                case.body["month"] = "1999-01"  # a real sweep per example would be slow
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        started = time.perf_counter()
        check()
        timings[f"{operation.method.upper()} {operation.path}"] = time.perf_counter() - started
    slow = sorted(timings.items(), key=lambda kv: -kv[1])[:5]
    print("slowest operations:", ", ".join(f"{k} {v:.1f}s" for k, v in slow))
