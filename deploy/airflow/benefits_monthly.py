"""Apache Airflow DAG: the benefits monthly cycle, one DAG run per benefit month.

Copy into the Airflow ``dags/`` folder on a worker that has ``benefits`` installed (or change
``BENEFITS`` to a ``docker run …``/``ssh …`` command) and set the paths below.

Each DAG run calls the same idempotent command as the built-in scheduler, systemd and cron:
``benefits cycle run --month YYYY-MM``. The month is the month the run starts in (the end of
its data interval, in Hangzhou time): the run of 1 February 08:00 does benefit month
2025-02. Airflow's own catch-up (``catchup=True``) runs months missed while it was down;
running a finished month again does nothing.

Exit codes decide what Airflow does:

- 0 done (or already done) → success;
- 3 the delivery is incomplete before its deadline, 4 another instance runs the month →
  the task fails *with retry*: hourly, for three days — the cycle goes on without a late
  table once the deadline (day 4, 12:00 by default) has passed;
- 5 stopped for a human (data-quality gate, broken delivery), 2 failed → the task fails
  *without retry*; fix the delivery, or accept with
  ``benefits cycle run --month M --accept-gate "why" --by NAME``, then clear the task.

Works with Airflow 2.7+ and 3.x.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pendulum
from airflow.exceptions import AirflowException, AirflowFailException

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.python import PythonOperator

BENEFITS = "/opt/benefits/.venv/bin/benefits"
CONFIG = "/etc/benefits/benefits.toml"  # the database URL: BENEFITS_DATABASE_URL on the worker
TIMEZONE = pendulum.timezone("Asia/Shanghai")
RETRY_ON = {3: "waiting for the delivery", 4: "another instance is running the month"}


def run_benefits_cycle(month: str) -> str:
    """Run ``benefits cycle run --month MONTH``; map its exit code to Airflow's outcome."""
    argv = [BENEFITS, "cycle", "run", "--month", month, "--config", CONFIG, "--verbose"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    print(proc.stdout)
    print(proc.stderr)
    if proc.returncode == 0:
        return proc.stdout.strip()
    if proc.returncode in RETRY_ON:
        raise AirflowException(f"{month}: {RETRY_ON[proc.returncode]}; retrying later")
    raise AirflowFailException(
        f"{month}: stopped (exit {proc.returncode}): {proc.stdout.strip()[-500:]} — "
        "see `benefits cycle history --month " + month + "`"
    )


with DAG(
    dag_id="benefits_monthly_cycle",
    description="Landing folder → snapshot → checks → sweep → ledger run → draft batch → alerts",
    # the run of 1 February 08:00 (end of the January interval) does benefit month 2025-02;
    # start one month before the first benefit month to run
    start_date=pendulum.datetime(2024, 12, 1, 8, 0, tz=TIMEZONE),
    schedule="0 8 1 * *",
    catchup=True,
    max_active_runs=1,
    default_args={
        "owner": "benefits",
        "retries": 72,
        "retry_delay": timedelta(hours=1),
        "execution_timeout": timedelta(hours=6),
    },
    tags=["benefits"],
) as dag:
    PythonOperator(
        task_id="cycle_run",
        python_callable=run_benefits_cycle,
        op_kwargs={
            "month": "{{ data_interval_end.in_timezone('Asia/Shanghai').strftime('%Y-%m') }}"
        },
    )
