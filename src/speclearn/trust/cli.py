"""`speclearn qa predict`: anomaly flags for a run of spectra; `speclearn qa train`: the QA model.

The QA model is a dedicated folder (`qa train --spectra REFERENCE.csv --out QA_MODEL`, reference =
in-control spectra of the same method and axis), independent of any quantifier. The run order is the
spectra file's order, or the metadata's row order when `--metadata` has a `time` column (which must
then increase strictly down the rows).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from speclearn.cli.common import (DeviceOption, OverwriteOption, QuietOption, ReportOption, SeedOption, SpectraOption,
                                  check_outputs, say, write_report)
from speclearn.core.errors import InputError
from speclearn.io import align_table, read_spectra, read_table_csv, write_table_csv

app = typer.Typer(no_args_is_help=True,
                  help="QA flags over a run: `speclearn qa predict --model QA_MODEL --spectra RUN.csv --out "
                       "FLAGS.csv`; train the QA model with `speclearn qa train`.")


def plot_path(flags: Path) -> Path:
    return flags.with_name(flags.stem + ".drift.png")


def run_order(metadata: Path | None, data):
    """(spectra in run order, time values or None) from the ids' order or the metadata `time` column."""
    if metadata is None:
        return data, None
    table = read_table_csv(metadata)
    align_table(table, data, file=metadata)
    if "time" not in table.columns:
        return data.select(list(table.index)), None
    raw = table["time"]
    values = pd.to_numeric(raw, errors="coerce")
    if values.isna().any():
        values = pd.to_datetime(raw, errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if bad.size:
        raise InputError(f"time {raw.iloc[bad[0]]!r} is neither a number nor a date", file=metadata,
                         row=int(bad[0]) + 1, column="time")
    steps = np.diff(values.to_numpy().astype("datetime64[ns]").astype(np.int64) if values.dtype.kind == "M"
                    else values.to_numpy(float))
    back = np.flatnonzero(steps <= 0)
    if back.size:
        raise InputError(f"the time column is not strictly increasing ({raw.iloc[back[0] + 1]} after "
                         f"{raw.iloc[back[0]]}); list the run in acquisition order", file=metadata,
                         row=int(back[0]) + 2, column="time")
    return data.select(list(table.index)), values


def plot_run(table: pd.DataFrame, times, path: Path) -> Path:
    """Run-level drift plot: IS recovery and signal level, then the anomaly components over the run."""
    from speclearn.report import pyplot, save_figure
    plt = pyplot()

    x = np.arange(len(table)) if times is None else np.asarray(times)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    if table["is_recovery_value"].notna().any():
        top.plot(x, 100 * table["is_recovery_value"], ".-", label="internal-standard recovery %")
    top.plot(x, 100 * table["signal_level_ratio"], ".-", label="signal level % of reference (median over bright bins)")
    top.axhline(100, color="0.5", lw=0.8)
    top.set(ylabel="% of reference", title="Sensitivity over the run")
    top.legend(fontsize=8)
    for name in ("drift", "recon", "ood", "spike", "interference", "is_recovery"):
        bottom.plot(x, table[name], lw=0.9, label=name)
    flagged = table["flagged"].to_numpy()
    bottom.scatter(x[flagged], table["anomaly_score"].to_numpy()[flagged], color="red", zorder=3, s=18,
                   label="flagged")
    bottom.axhline(1, color="k", ls="--", lw=0.8)
    bottom.set_yscale("symlog", linthresh=1)
    bottom.set(xlabel="time" if times is not None else "position in run", ylabel="score (1 = limit)",
               title=f"Anomaly components: {int(flagged.sum())} of {len(table)} flagged")
    bottom.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return save_figure(fig, path)


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option("--model", help="QA model folder from `speclearn qa train`.")],
    spectra: Annotated[Path, typer.Option("--spectra", help="The run's spectra (CSV: id + axis).")],
    out: Annotated[Path, typer.Option("--out", help="Flags table to write (CSV); the drift plot "
                                                    "goes beside it as <stem>.drift.png.")],
    metadata: Annotated[Path | None, typer.Option("--metadata", help="id + `time` column: the run order.")] = None,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Per spectrum: anomaly score, flag and reasons; plus a run-level drift plot."""
    from speclearn.models import load, use_device
    from speclearn.trust.qa import RunQA

    plot = plot_path(out)
    check_outputs(out, plot, report=report, overwrite=overwrite, inputs=[spectra, metadata, model])
    detector = use_device(load(model, RunQA), device)
    data, times = run_order(metadata, read_spectra(spectra))
    table = detector.predict(data)
    if times is not None:
        table.insert(0, "time", np.asarray(times))
    table.insert(0, "position", np.arange(len(table)))
    plot_run(table, times, plot)
    write_table_csv(table, out, overwrite=overwrite)
    say(f"wrote {out} ({int(table['flagged'].sum())} of {len(table)} spectra flagged) and {plot}")
    write_report(report, "qa predict", inputs={"model": model, "spectra": spectra, "metadata": metadata},
                 spectra=data, table=table, model=model)


@app.command()
def train(
    spectra: SpectraOption,
    out: Annotated[Path, typer.Option("--out", help="QA model folder to write.")],
    internal_standard: Annotated[str, typer.Option("--internal-standard", help="Element added to every sample "
                                                                               "('' for none).")] = "In",
    epochs: Annotated[int, typer.Option("--epochs", help="Autoencoder training epochs.")] = 150,
    z_limit: Annotated[float, typer.Option("--z-limit", help="Robust z at which a component is flagged.")] = 6.0,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    report: ReportOption = None,
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Learn in-control spectra (REFERENCE: spectra of good samples on the same axis) for `speclearn qa`."""
    from speclearn.models import use_device
    from speclearn.trust.qa import RunQA

    check_outputs(out, report=report, overwrite=overwrite, inputs=[spectra])
    data = read_spectra(spectra)
    detector = use_device(RunQA(internal_standard=internal_standard, epochs=epochs, z_limit=z_limit, seed=seed),
                          device).fit(data)
    detector.save(out, overwrite=overwrite)
    say(f"wrote {out}: QA model from {data.n_spectra} reference spectra x {data.n_channels} channels")
    write_report(report, "qa train", inputs={"spectra": spectra, "epochs": epochs, "seed": seed}, spectra=data,
                 model=out)
