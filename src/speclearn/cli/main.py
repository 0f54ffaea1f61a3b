"""The `speclearn` command: one Typer app; each seed system registers its own sub-commands here."""
from __future__ import annotations

import sys
import traceback

import click
import typer

from speclearn.core.errors import InputError
from speclearn.cli import basics
from speclearn.simulate import cli as simulate_cli
from speclearn.unmix import cli as unmix_cli

app = typer.Typer(name="speclearn", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="Deep learning for spectra, measured against the classical methods on the same data.")
app.command("inspect")(basics.inspect)
app.command("preprocess")(basics.preprocess)
app.command("demo")(basics.demo)
# seed systems: one sub-app each
app.add_typer(simulate_cli.app, name="simulate")
app.add_typer(unmix_cli.app, name="unmix")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input gives a one-line error and exit code 2 (a traceback with --debug)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        result = app(args=argv, prog_name="speclearn", standalone_mode=False)
        return int(result or 0)
    except InputError as err:
        if debug:
            traceback.print_exc()
        print(f"speclearn: error: {err}", file=sys.stderr)
        return 2
    except click.exceptions.Exit as err:
        return int(err.exit_code)
    except click.ClickException as err:
        err.show()
        return 2 if err.exit_code in (1, 2) else err.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 1


def run() -> None:
    sys.exit(main())
