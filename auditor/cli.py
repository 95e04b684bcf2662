"""Command line: ``auditor run | validate | render | plugins | schema``.

Exit codes: 0 every check passed; 1 a check failed; 2 the spec or the command line is
invalid; 3 the run failed. Only this module turns exceptions into messages and codes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from auditor import __version__
from auditor.errors import AuditorError, SpecError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = """\b
Exit codes:
  0  every check passed
  1  a check failed
  2  the spec or the command line is invalid
  3  the run failed (an explainer raised, the model did not load)"""


def _user_errors(func: F) -> F:
    """Print our own errors without a traceback and exit with their code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            for issue in exc.issues:
                click.echo(f"error: {issue}", err=True)
            sys.exit(exc.exit_code)
        except AuditorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Declarative batch auditor for PyTorch models."""


@cli.command(epilog=EXIT_CODES)
@click.argument("spec", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", type=click.Path(path_type=Path), help="Output folder (overrides spec's output)."
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a spec value."
)
@click.option("--run-id", help="Name of the run folder (default: a timestamp).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@_user_errors
def run(
    spec: Path, out: Path | None, overrides: tuple[str, ...], run_id: str | None, quiet: bool
) -> None:
    """Run the audit described by SPEC."""
    from auditor.spec import load_spec

    load_spec(spec, overrides)
    click.echo(
        "error: 'auditor run' is not implemented yet (the runner is still being built); "
        "the spec is valid. Use 'auditor validate' meanwhile.",
        err=True,
    )
    sys.exit(3)


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a spec value."
)
def validate(specs: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check spec files without loading any model or data (exit 0 valid, 2 invalid)."""
    from auditor.spec import load_spec

    worst = 0
    for path in specs:
        try:
            load_spec(path, overrides)
        except SpecError as exc:
            for issue in exc.issues:
                click.echo(f"error: {issue}", err=True)
            worst = 2
        except AuditorError as exc:
            click.echo(f"error: {path}: {exc}", err=True)
            worst = max(worst, exc.exit_code)
        else:
            click.echo(f"{path}: valid")
    sys.exit(worst)


@cli.command()
@click.option(
    "--kind",
    type=click.Choice(["models", "datasets", "explainers", "metrics"]),
    help="Only this registry.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_user_errors
def plugins(kind: str | None, as_json: bool) -> None:
    """List every registered plugin with its params and defaults."""
    from auditor.plugins_view import plugin_listing, render_listing

    listing = plugin_listing(kind)
    if as_json:
        click.echo(json.dumps(listing, indent=2, default=str))
    else:
        render_listing(listing)


@cli.command()
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to a file.")
@_user_errors
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the spec (for yaml-language-server and other editors)."""
    from auditor.spec.schema import spec_schema

    text = json.dumps(spec_schema(), indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


def main() -> None:
    cli(prog_name="auditor")


if __name__ == "__main__":
    main()
