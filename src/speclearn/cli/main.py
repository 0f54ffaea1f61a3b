"""The `speclearn` command: one Typer app; each seed system registers its own sub-commands here."""
from __future__ import annotations

import sys
import traceback

import typer

from speclearn.classify import cli as classify_cli
from speclearn.cli import basics, bench
from speclearn.core.errors import InputError
from speclearn.denoise import cli as denoise_cli
from speclearn.generate import cli as generate_cli
from speclearn.mrs import cli as mrs_cli
from speclearn.quantify import cli as quantify_cli
from speclearn.simulate import cli as simulate_cli
from speclearn.transfer import cli as transfer_cli
from speclearn.trust import cli as trust_cli
from speclearn.unmix import cli as unmix_cli

app = typer.Typer(name="speclearn", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="Deep learning for spectra, measured against the classical methods on the same data.")
app.command("inspect")(basics.inspect)
app.command("preprocess")(basics.preprocess)
app.command("demo")(basics.demo)
app.command("bench")(bench.bench)
# seed systems: one sub-app each
app.add_typer(simulate_cli.app, name="simulate")
app.add_typer(quantify_cli.app, name="quantify")
app.add_typer(denoise_cli.app, name="denoise")
app.add_typer(transfer_cli.app, name="transfer")
app.add_typer(unmix_cli.app, name="unmix")
app.add_typer(trust_cli.app, name="qa")
app.add_typer(classify_cli.app, name="classify")
app.add_typer(generate_cli.app, name="generate")
app.add_typer(mrs_cli.app, name="mrs")


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
    except typer.Exit as err:
        return int(err.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 1
    except typer.TyperException as err:  # usage errors: unknown option, missing argument, bad value
        err.show()
        return 2


def run() -> None:
    sys.exit(main())
