"""The scheduled-job recipes in examples/schedule/ (issue 15) parse and run the demo audit.

The cron line and the systemd ExecStart are taken from the files, their install paths
(/srv/auditor) replaced by this checkout and a temporary output folder, and run for real on
a 16-sample slice; the GitHub Actions audit step and the Airflow task's bash script are run
the same way for the exit codes they handle (1: a failed check, 3: a failed run, retried).
"""

from __future__ import annotations

import ast
import configparser
import fcntl
import json
import os
import py_compile
import re
import shlex
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = ROOT / "examples" / "schedule"
INSTALL = "/srv/auditor"
SPEC_ARG = "audits/breast_cancer_mlp.yaml"
NAME = "breast-cancer-mlp"
#: Small and fast: 16 samples, no HTML/PDF report.
FAST = ["--set", "data.slice.stop=16", "--set", "report.formats=[]"]
#: A check that fails (IG's completeness error is ~1e-3 on this model, never below 1e-9).
FAILING_CHECK = ["--set", "checks[2].max=1e-9"]
#: A run that fails (exit 3): one sample is too few for DeepLIFT-SHAP's background and the
#: linear surrogate's held-out split, so those explainers raise.
FAILING_RUN = ["--set", "data.slice.stop=1", "--set", "report.formats=[]"]
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


def _localize(text: str, out: Path) -> str:
    """The recipe's install paths replaced by this checkout and ``out`` for run folders."""
    return text.replace(f"{INSTALL}/runs", str(out)).replace(INSTALL, str(ROOT))


def _with_args(command: str, spec: str, extra: list[str]) -> str:
    """``command`` with ``extra`` (shell-quoted) right after its one SPEC argument."""
    assert command.count(spec) == 1, command
    return command.replace(spec, spec + " " + shlex.join(extra))


def _run_folders(out: Path) -> list[Path]:
    return sorted(p for p in (out / NAME).iterdir() if p.is_dir()) if (out / NAME).exists() else []


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def _check_cron_schedule(fields: list[str]) -> None:
    assert len(fields) == 5 and all(CRON_FIELD.match(f) for f in fields), fields


def _cron_line() -> tuple[list[str], str]:
    lines = [
        line
        for line in (SCHEDULE / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line)
    ]
    assert len(lines) == 1, lines
    parts = lines[0].split(maxsplit=5)
    return parts[:5], parts[5]


def test_cron_line_runs_the_demo_audit_logs_it_and_skips_an_overlapping_run(
    tmp_path: Path,
) -> None:
    schedule, command = _cron_line()
    _check_cron_schedule(schedule)
    assert "%" not in command  # cron would turn it into a newline
    assert "flock -n" in command and ".venv/bin/auditor run " in command
    out = tmp_path / "runs"
    line = _with_args(_localize(command, out), SPEC_ARG, FAST)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}  # cron's bare env

    done = subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # a passing run mails nothing
    [run] = _run_folders(out)
    assert _results(run)["status"] == "passed"
    assert (run / "junit.xml").is_file()
    log = (out / f"{NAME}.cron.log").read_text()
    assert f"PASSED: {run}" in log and "verdict: PASSED" in log

    # The previous night's run still holds the lock: the new one starts nothing and says so.
    lock = out / f".{NAME}.cron.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        overlap = subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, text=True)
    assert overlap.returncode == 0, overlap.stderr
    assert f"auditor {NAME} exited 75 " in overlap.stdout
    assert _run_folders(out) == [run]


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    assert parser.read(SCHEDULE / name) == [str(SCHEDULE / name)]
    return parser


def test_systemd_timer_starts_the_service_whose_execstart_runs_the_demo_audit(
    tmp_path: Path,
) -> None:
    timer = _unit("auditor-audit.timer")
    assert timer["Timer"]["Unit"] == "auditor-audit.service"
    assert timer["Timer"]["OnCalendar"] == "*-*-* 02:30:00"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"

    service = _unit("auditor-audit.service")["Service"]
    assert service["Type"] == "oneshot"
    # Exit 3 is retried; a failed check (1) and an invalid spec (2) are not.
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"].split() == ["1", "2"]
    argv = shlex.split(_localize(service["ExecStart"], tmp_path / "runs"))
    assert argv[:3] == [str(ROOT / ".venv/bin/auditor"), "run", str(ROOT / SPEC_ARG)]
    cwd = _localize(service["WorkingDirectory"], tmp_path / "runs")
    assert cwd == str(ROOT)

    done = subprocess.run(argv + FAST, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    [run] = _run_folders(tmp_path / "runs")
    assert _results(run)["status"] == "passed"
    assert f"results: {run / 'results.json'}" in done.stdout


def _workflow() -> dict:
    return YAML(typ="safe").load((SCHEDULE / "github-audit.yml").read_text())


def _step(steps: list[dict], **match: str) -> dict:
    found = [s for s in steps if all(v in str(s.get(k, "")) for k, v in match.items())]
    assert len(found) == 1, (match, steps)
    return found[0]


def test_github_workflow_triggers_steps_and_uploads_even_when_the_audit_fails(
    tmp_path: Path,
) -> None:
    flow = _workflow()
    triggers = flow["on"]  # YAML 1.2: `on` is a key, not True
    _check_cron_schedule(triggers["schedule"][0]["cron"].split())
    assert triggers["pull_request"]["paths"] == ["audits/**"]
    job = flow["jobs"]["audit"]
    steps = job["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert _step(steps, uses="actions/setup-python@")["with"]["python-version"] == "3.11"
    assert "make install" in _step(steps, run="make install")["run"]
    audit = _step(steps, run="auditor run")
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    publish = _step(steps, uses="mikepenz/action-junit-report@")
    later = steps[steps.index(audit) + 1 :]
    assert len(uploads) == 2 and all(s in later for s in [*uploads, publish])
    # They run after a failed audit step (not only on success), but not on a cancelled job.
    assert all(s["if"] == "${{ !cancelled() }}" for s in [*uploads, publish])

    # Run the audit step as GitHub does (bash -eo pipefail) on a failing check.
    out = tmp_path / "runs"
    gh_output = tmp_path / "github_output"
    script = _with_args(audit["run"], '"$AUDIT_SPEC"', FAST + FAILING_CHECK)
    env = {
        **os.environ,
        **job["env"],
        "AUDIT_OUT": str(out),
        "RUN_ID": "gh-1-1",
        "GITHUB_OUTPUT": str(gh_output),
    }
    assert audit["env"]["RUN_ID"] == "gh-${{ github.run_id }}-${{ github.run_attempt }}"
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr  # the job fails
    assert "::error title=auditor::a check failed (exit 1)" in done.stdout
    assert gh_output.read_text() == "exit_code=1\n"
    run = out / NAME / "gh-1-1"
    assert _results(run)["status"] == "failed"
    # What the upload steps name is there to upload.
    paths = {s["with"]["name"]: s["with"]["path"] for s in uploads}
    assert paths == {
        "audit-run": "${{ env.AUDIT_OUT }}/",
        "audit-junit": "${{ env.AUDIT_OUT }}/**/junit.xml",
    }
    assert list(out.glob("**/junit.xml")) == [run / "junit.xml"]
    assert publish["with"]["report_paths"] == paths["audit-junit"]


def _airflow_command() -> tuple[str, ast.Call]:
    path = SCHEDULE / "airflow_audit_dag.py"
    py_compile.compile(str(path), doraise=True)  # airflow itself is not installed here
    tree = ast.parse(path.read_text())
    [command] = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["AUDIT_COMMAND"]
    ]
    [operator] = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "BashOperator"
    ]
    return command, operator


def test_airflow_task_is_jinja_free_and_retries_a_failed_run_then_fails(tmp_path: Path) -> None:
    command, operator = _airflow_command()
    assert '"$AUDITOR" run "$AUDIT_SPEC" --out "$AUDIT_OUTPUT"' in command
    assert "{{" not in command and "{%" not in command and "{#" not in command  # Jinja-free
    keywords = {k.arg: k.value for k in operator.keywords}
    assert ast.literal_eval(keywords["retries"]) == 0  # exit 1 and 2 are never rerun
    assert isinstance(keywords["bash_command"], ast.Name)
    assert keywords["bash_command"].id == "AUDIT_COMMAND"
    env_keys = {ast.literal_eval(k) for k in keywords["env"].keys}  # type: ignore[attr-defined]
    assert env_keys == {
        "AUDITOR",
        "AUDIT_SPEC",
        "AUDIT_OUTPUT",
        "AUDIT_RETRIES",
        "AUDIT_RETRY_DELAY",
    }

    def task(extra: list[str], out: Path) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "AUDITOR": str(ROOT / ".venv/bin/auditor"),
            "AUDIT_SPEC": str(ROOT / SPEC_ARG),
            "AUDIT_OUTPUT": str(out),
            "AUDIT_RETRIES": "1",
            "AUDIT_RETRY_DELAY": "0",
        }
        script = _with_args(command, '"$AUDIT_SPEC"', extra)
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)

    # Exit 3 twice: retried once, then the task fails; each try left its own run folder.
    failed_run = task(FAILING_RUN, tmp_path / "error")
    assert failed_run.returncode == 3, failed_run.stderr
    assert "auditor: the run failed (exit 3); retry 1 in 0 s" in failed_run.stderr
    assert "auditor: the run failed (exit 3) on all 2 tries: see error.log" in failed_run.stderr
    tries = _run_folders(tmp_path / "error")
    assert [_results(r)["status"] for r in tries] == ["error", "error"]


def test_airflow_task_does_not_rerun_a_failed_check(tmp_path: Path) -> None:
    command, _ = _airflow_command()
    env = {
        **os.environ,
        "AUDITOR": str(ROOT / ".venv/bin/auditor"),
        "AUDIT_SPEC": str(ROOT / SPEC_ARG),
        "AUDIT_OUTPUT": str(tmp_path),
        "AUDIT_RETRIES": "2",
        "AUDIT_RETRY_DELAY": "0",
    }
    script = _with_args(command, '"$AUDIT_SPEC"', FAST + FAILING_CHECK)
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "auditor: a check failed (exit 1): see junit.xml" in done.stderr
    [run] = _run_folders(tmp_path)
    assert _results(run)["status"] == "failed"
