"""Airflow DAG that runs an auditor spec every night through the CLI (a ``BashOperator``).

It relies only on ``auditor run`` and its documented exit codes (README, "Command line"):

- 0: every check passed; the task succeeds.
- 1: a check failed; the task fails with that message (the run folder's junit.xml and
  report say which check). Not retried: the audit is deterministic, a rerun fails again.
- 2: the spec or the command line is invalid; the task fails, not retried.
- 3: the run failed (an explainer raised, the model did not load, an internal error, with
  the traceback in the run folder's error.log); retried inside the task up to
  ``AUDIT_RETRIES`` more times, ``AUDIT_RETRY_DELAY`` seconds apart, each try in a run
  folder of its own. Airflow's own ``retries`` stays 0 so that 1 and 2 are not rerun.

Copy this file into the DAGs folder and set the three paths below.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3 (apache-airflow-providers-standard)
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

#: The project checkout with ``make install`` run in it, and where run folders go.
AUDITOR = "/srv/auditor/.venv/bin/auditor"
AUDIT_SPEC = "/srv/auditor/audits/breast_cancer_mlp.yaml"
AUDIT_OUTPUT = "/srv/auditor/runs"

#: The task's bash script; values come from ``env``; it holds no Jinja expression, so
#: Airflow's templating leaves it as it is.
AUDIT_COMMAND = """
set -u
attempt=0
while :; do
  code=0
  "$AUDITOR" run "$AUDIT_SPEC" --out "$AUDIT_OUTPUT" || code=$?
  case "$code" in
    0) exit 0 ;;
    1) echo "auditor: a check failed (exit 1): see junit.xml and the report in the run folder" >&2
       exit 1 ;;
    2) echo "auditor: the spec or the command line is invalid (exit 2): $AUDIT_SPEC" >&2
       exit 2 ;;
    3) if [ "$attempt" -ge "$AUDIT_RETRIES" ]; then
         echo "auditor: the run failed (exit 3) on all $((attempt + 1)) tries: see error.log" >&2
         exit 3
       fi
       attempt=$((attempt + 1))
       echo "auditor: the run failed (exit 3); retry $attempt in $AUDIT_RETRY_DELAY s" >&2
       sleep "$AUDIT_RETRY_DELAY" ;;
    *) echo "auditor: unexpected exit code $code" >&2
       exit "$code" ;;
  esac
done
"""

with DAG(
    dag_id="auditor_breast_cancer_mlp",
    description="Nightly auditor run of audits/breast_cancer_mlp.yaml",
    schedule="30 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # never two runs of the same audit at once
    tags=["auditor"],
) as dag:
    BashOperator(
        task_id="audit",
        bash_command=AUDIT_COMMAND,
        env={
            "AUDITOR": AUDITOR,
            "AUDIT_SPEC": AUDIT_SPEC,
            "AUDIT_OUTPUT": AUDIT_OUTPUT,
            "AUDIT_RETRIES": "2",
            "AUDIT_RETRY_DELAY": "600",
        },
        append_env=True,
        retries=0,
        execution_timeout=timedelta(hours=3),
    )
