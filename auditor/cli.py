"""Command line: ``auditor run | validate | render | diff | plugins | schema``.

Exit codes: 0 every check passed; 1 a check failed; 2 the spec or the command line is
invalid; 3 the run failed. Only this module turns exceptions into messages and codes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from auditor import __version__
from auditor.errors import AuditorError, InternalError, SpecError, UsageError

if TYPE_CHECKING:
    from auditor.results import Results

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = """\b
Exit codes:
  0  every check passed
  1  a check failed (or a health warning, with --fail-on warning)
  2  the spec or the command line is invalid
  3  the run failed (an explainer raised, the model did not load, an internal
     error: its traceback is in the run folder's error.log)"""

#: Every path the user gives is made absolute, symlinks resolved, once, here.
PATH = click.Path(path_type=Path, resolve_path=True)


def _user_errors(func: F) -> F:
    """Print our own errors without a traceback and exit with their code.

    Any other exception is a bug (in auditor or a plugin): exit 3 with one line that says
    where its traceback went, never a traceback on the terminal and never exit 1 (which
    means a check failed).
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InternalError as exc:
            click.echo(f"internal error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except SpecError as exc:
            for issue in exc.issues:
                click.echo(f"error: {issue}", err=True)
            sys.exit(exc.exit_code)
        except AuditorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            from auditor.internal import as_internal_error

            error = as_internal_error(exc, None)
            click.echo(f"internal error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Declarative batch auditor for PyTorch models."""


@cli.command(epilog=EXIT_CODES)
@click.argument("spec", type=PATH, required=False)
@click.option("--out", type=PATH, help="Output folder (instead of the spec's).")
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a spec value."
)
@click.option("--run-id", help="Name of the run folder (default: a UTC timestamp).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--fail-fast", is_flag=True, help="Stop explaining at the first failed explainer.")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="Lowest check severity that fails the run; warning also fails on health warnings.",
)
@click.option(
    "--resume",
    type=PATH,
    metavar="RUN_DIR",
    help="Finish an interrupted run with its own spec and --set values (SPEC optional).",
)
@click.option(
    "--reuse",
    type=PATH,
    metavar="RUN_DIR",
    help="Copy finished attributions from an earlier run whose inputs hash the same.",
)
@_user_errors
def run(
    spec: Path | None,
    out: Path | None,
    overrides: tuple[str, ...],
    run_id: str | None,
    quiet: bool,
    fail_fast: bool,
    fail_on: str,
    resume: Path | None,
    reuse: Path | None,
) -> None:
    """Run the audit described by SPEC and write its run folder.

    With --resume RUN_DIR, SPEC may be left out: the run folder's spec.yaml and the run's
    --set values are used; a SPEC or --set given anyway must be the ones the run started
    with.
    """
    from auditor.runner import RunOptions
    from auditor.runner import run as run_audit

    if resume and (out or run_id):
        raise UsageError(
            "--resume takes the run folder itself; do not combine it with --out or --run-id"
        )
    options = RunOptions(
        out=out,
        overrides=overrides,
        run_id=run_id,
        progress="quiet" if quiet else "auto",
        fail_fast=fail_fast,
        fail_on=fail_on,
        resume=resume,
        reuse=reuse,
    )
    outcome = run_audit(spec, options)
    for report in outcome.reports:
        click.echo(f"report: {report}")
    click.echo(f"results: {outcome.folder.path / 'results.json'}")
    click.echo(f"verdict: {verdict_words(outcome.results)} (exit {outcome.exit_code})")
    sys.exit(outcome.exit_code)


def verdict_words(results: Results) -> str:
    """``PASSED``, ``FAILED``, ``ERROR``; with health warnings ``PASSED WITH 2 WARNINGS``,
    so the terminal agrees with the report's "PASS WITH WARNINGS"."""
    words = results.status.upper()
    count = len(results.warnings)
    if count and results.status != "error":
        words += f" WITH {count} WARNING{'S' if count > 1 else ''}"
    return words


@cli.command(epilog=EXIT_CODES)
@click.argument("run_dir", type=PATH)
@click.option(
    "--format", "formats", multiple=True, type=click.Choice(["html", "pdf"]), help="Default: both."
)
@_user_errors
def render(run_dir: Path, formats: tuple[str, ...]) -> None:
    """Re-render the report of RUN_DIR from its stored results (nothing is recomputed)."""
    from auditor.internal import internal_errors
    from auditor.report import render as render_report
    from auditor.run_folder import RunFolder

    folder = RunFolder.open_finished(run_dir)
    with internal_errors(folder.path):
        paths = render_report(folder, list(formats) or ["html", "pdf"])
    for path in paths:
        click.echo(f"report: {path}")


@cli.command(epilog=EXIT_CODES)
@click.argument("run_a", type=PATH)
@click.argument("run_b", type=PATH)
@click.option(
    "--out", type=PATH, help="Folder for diff.json/html/pdf (default: RUN_B/../diff-<A>-<B>)."
)
@_user_errors
def diff(run_a: Path, run_b: Path, out: Path | None) -> None:
    """Compare two finished runs: checks, inputs, rankings and metrics (RUN_A -> RUN_B).

    Writes diff.json, diff.html and diff.pdf (PDF/A-3b with both results.json attached);
    exit 0 when written, 2 when a folder is not a finished run.
    """
    from auditor.diff import compare_runs, write_diff
    from auditor.internal import internal_errors
    from auditor.run_folder import RunFolder

    first, second = RunFolder.open_finished(run_a), RunFolder.open_finished(run_b)
    target = out or second.path.parent / f"diff-{first.run_id}-{second.run_id}"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the diff folder {target}: {exc.strerror}") from None
    with internal_errors(target):
        paths = write_diff(compare_runs(first.path, second.path), target)
    for path in paths:
        click.echo(f"{path.suffix[1:]}: {path}")


@cli.command(epilog=EXIT_CODES)
@click.argument("audit_dir", type=PATH)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_user_errors
def history(audit_dir: Path, as_json: bool) -> None:
    """The runs of one audit (<output>/<name>), oldest first, from its index.jsonl.

    Deleted or unfinished runs are skipped with a warning on stderr; exit 2 when the folder
    holds no audit's runs.
    """
    from auditor.history import history_table

    click.echo(
        history_table(
            audit_dir, as_json=as_json, warn=lambda m: click.echo(f"warning: {m}", err=True)
        )
    )


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a spec value."
)
def validate(specs: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check spec files without loading any model or data (exit 0 valid, 2 invalid).

    Every file is checked, whatever happened to the ones before it; a bug met while
    checking one (exit 3) is reported with the path of its traceback.
    """
    from auditor.internal import as_internal_error
    from auditor.spec import load_spec

    worst = 0
    for path in specs:
        try:
            load_spec(path, overrides)
        except SpecError as exc:
            for issue in exc.issues:
                click.echo(f"error: {issue}", err=True)
            worst = max(worst, 2)
        except AuditorError as exc:
            click.echo(f"error: {path}: {exc}", err=True)
            worst = max(worst, exc.exit_code)
        except Exception as exc:
            error = as_internal_error(exc, None)
            click.echo(f"internal error: {path}: {error}", err=True)
            worst = max(worst, error.exit_code)
        else:
            click.echo(f"{path}: valid")
    sys.exit(worst)


@cli.command()
@click.option(
    "--kind",
    type=click.Choice(
        ["models", "datasets", "explainers", "metrics", "model", "dataset", "explainer", "metric"],
        case_sensitive=False,
    ),
    help="Only this registry (plural or singular).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_user_errors
def plugins(kind: str | None, as_json: bool) -> None:
    """List every registered plugin with its params, defaults and what each param does."""
    from auditor.plugins_view import plugin_listing, registry_key, render_listing

    listing = plugin_listing(registry_key(kind) if kind else None)
    if as_json:
        click.echo(json.dumps(listing, indent=2, default=str))
    else:
        render_listing(listing)


@cli.command()
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to a file.")
@click.option("--results", "of_results", is_flag=True, help="The schema of results.json instead.")
@_user_errors
def schema(output: Path | None, of_results: bool) -> None:
    """Print the JSON Schema of the spec (for yaml-language-server and other editors)."""
    from auditor.results import results_schema
    from auditor.spec.schema import spec_schema

    text = json.dumps(results_schema() if of_results else spec_schema(), indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


def main() -> None:
    cli(prog_name="auditor")


if __name__ == "__main__":
    main()
