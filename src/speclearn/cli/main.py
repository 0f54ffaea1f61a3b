"""The `speclearn` command: one Typer app; each system registers its own sub-commands in `SYSTEMS`.

Only the system a command line names is imported, so `speclearn --help` and `speclearn inspect`
start without loading torch.
"""
from __future__ import annotations

import importlib
import sys
import traceback
import warnings
from typing import Annotated

import typer

from speclearn.cli import basics, bench, export
from speclearn.cli.common import upgrade_argv
from speclearn.core.errors import FILES_READ, InputError
from speclearn.progress import set_quiet

#: sub-command -> (module holding its Typer `app`, the line `speclearn --help` shows)
SYSTEMS = {
    "simulate": ("speclearn.simulate.cli", "Physics-based synthetic spectra with full ground truth."),
    "quantify": ("speclearn.quantify.cli", "Quantify analytes or properties from spectra."),
    "denoise": ("speclearn.denoise.cli", "Denoise spectra: replicate-trained, weak-label, supervised, classical."),
    "transfer": ("speclearn.transfer.cli", "Transfer spectra from secondary instruments into a primary one's space."),
    "unmix": ("speclearn.unmix.cli", "Unmix a spectrum image into component spectra and abundance maps."),
    "qa": ("speclearn.trust.cli", "QA flags over a run, and the QA model behind them."),
    "classify": ("speclearn.classify.cli", "Classify spectra: CNN with transfer learning, kNN, SVM, RF, PLS-DA."),
    "generate": ("speclearn.generate.cli", "Generate spectra for requested compositions with a conditional VAE."),
    "gamma": ("speclearn.gamma.cli", "Gamma-ray spectra: nuclide identification, materials, composition."),
    "mrs": ("speclearn.mrs.cli", "Magnetic resonance spectroscopy: align, fit, quantify with uncertainty, QA."),
}


def _version(value: bool) -> None:
    if value:
        from speclearn import __version__
        typer.echo(f"speclearn {__version__}")
        raise typer.Exit()


def build_app(argv: list[str]) -> typer.Typer:
    """The command line for `argv`: the system it names is imported, the others are listed only."""
    app = typer.Typer(name="speclearn", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                      help="Deep learning for spectra, measured against the classical methods on the same data.")

    @app.callback()
    def root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                                   help="Show the version and exit.")] = False) -> None:
        """Deep learning for spectra, measured against the classical methods on the same data."""

    app.command("inspect")(basics.inspect)
    app.command("preprocess")(basics.preprocess)
    app.command("demo")(basics.demo)
    app.command("bench")(bench.bench)
    app.command("export")(export.export)
    named = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module, help_text) in SYSTEMS.items():
        if name == named:
            app.add_typer(importlib.import_module(module).app, name=name)
        else:
            placeholder = typer.Typer(help=help_text)
            placeholder.callback(invoke_without_command=True)(lambda: None)
            app.add_typer(placeholder, name=name, help=help_text)
    return app


def _first_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Dependencies' warnings, each once, as one speclearn line (deprecations are not the user's)."""
    shown = set()
    for warning in caught:
        if issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            continue
        text = _first_line(warning.message)
        if text not in shown:
            shown.add(text)
            print(f"speclearn: warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input gives a one-line error and exit code 2 (a traceback with --debug).

    Warnings from the libraries underneath are collected and shown once each, after a successful
    run; a failed run prints only its error line.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    FILES_READ.clear()
    set_quiet(False)
    argv = upgrade_argv(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        code = _run(argv, debug)
    if code == 0:
        _show_warnings(caught)
    return code


def _run(argv: list[str], debug: bool) -> int:
    try:
        result = build_app(argv)(args=argv, prog_name="speclearn", standalone_mode=False)
        return int(result or 0)
    except InputError as err:
        if debug:
            traceback.print_exc()
        where = "" if err.file or not FILES_READ else f"{', '.join(FILES_READ)}: "
        print(f"speclearn: error: {where}{_first_line(err, 400)}", file=sys.stderr)
        return 2
    except typer.Exit as err:
        return int(err.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 1
    except typer.TyperException as err:  # usage errors: unknown option, missing argument, bad value
        err.show()
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a library failed on this input: one line, never a traceback
        if debug:
            traceback.print_exc()
        files = ", ".join(FILES_READ) or "the input"
        print(f"speclearn: error: {files}: {UNEXPECTED} ({type(err).__name__}: {_first_line(err)}); "
              "--debug shows the traceback", file=sys.stderr)
        return 2


#: Marks an error that no check of speclearn's anticipated (the reliability suite counts them).
UNEXPECTED = "processing failed"


def run() -> None:
    sys.exit(main())
