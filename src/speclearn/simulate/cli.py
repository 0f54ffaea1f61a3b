"""`speclearn simulate ...`: write synthetic spectra with their ground truth and a preview."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from speclearn.cli.common import OutOption, OverwriteOption, SeedOption, say
from speclearn.core.errors import InputError
from speclearn.io import check_output
from speclearn.mrs import cli as mrs_cli

app = typer.Typer(no_args_is_help=True, help="Physics-based synthetic spectra with full ground truth.")

LIBS_MODES = ("chemcam", "paired", "map")


def parse_knobs(items: list[str] | None) -> dict[str, float | bool]:
    """`NAME=VALUE` strings -> keyword dict (true/false become booleans, the rest numbers)."""
    knobs: dict[str, float | bool] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--knob must look like NAME=VALUE, got {item!r}")
        lowered = text.strip().lower()
        if lowered in ("true", "false", "on", "off"):
            knobs[name.strip()] = lowered in ("true", "on")
            continue
        try:
            knobs[name.strip()] = float(text)
        except ValueError:
            raise InputError(f"--knob {name.strip()}: {text!r} is not a number or true/false") from None
    return knobs


def _libs_preview(simulation, mode: str, path: Path) -> None:
    """A few measured spectra with their clean versions (chemcam); primary vs secondary (paired/map)."""
    from speclearn.report import pyplot, save_figure
    plt = pyplot()
    if mode == "chemcam":
        spectra = simulation.spectra
        first = spectra.meta.groupby("target", sort=False).head(1).index[:3]
        rows = spectra.meta.index.get_indexer(first)
        fig, axes = plt.subplots(len(rows), 1, figsize=(12, 2.6 * len(rows)), squeeze=False)
        for ax, row, name in zip(axes[:, 0], rows, first):
            ax.plot(spectra.axis, spectra.values()[row], lw=0.5, label="measured")
            ax.plot(spectra.axis, simulation.clean[row], lw=0.5, label="clean (lines, flat response)")
            ax.set_title(name, fontsize=9)
            ax.set_ylabel("counts")
        axes[0, 0].legend(fontsize=8)
        axes[-1, 0].set_xlabel("wavelength (nm)")
    else:
        extra = simulation.phase_maps is not None
        fig, axes = plt.subplots(1, 1 + extra, figsize=(12 + 4 * extra, 3.4), squeeze=False,
                                 width_ratios=[3, 1] if extra else [1])
        ax = axes[0, 0]
        clean_p = simulation.clean_primary.reshape(-1, simulation.primary.n_channels)[0]
        clean_s = simulation.clean_secondary.reshape(-1, simulation.secondary.n_channels)[0]
        ax.plot(simulation.primary.axis, simulation.primary.flat()[0], lw=0.5, label="primary")
        ax.plot(simulation.secondary.axis, simulation.secondary.flat()[0], lw=0.5, label="secondary")
        ax.plot(simulation.primary.axis, clean_p, lw=0.5, label="primary clean")
        ax.plot(simulation.secondary.axis, clean_s, lw=0.5, label="secondary clean")
        ax.set_title(f"spectrum {simulation.primary.ids[0]}", fontsize=9)
        ax.set_xlabel("wavelength (nm)")
        ax.legend(fontsize=8)
        if extra:
            image = axes[0, 1].imshow(np.argmax(simulation.phase_maps, axis=0), cmap="tab20", interpolation="nearest")
            axes[0, 1].set_title("dominant phase", fontsize=9)
            fig.colorbar(image, ax=axes[0, 1])
    fig.tight_layout()
    save_figure(fig, path)


@app.command("libs")
def libs(
    out: OutOption,
    n: Annotated[int, typer.Option("--n", help="chemcam: number of targets; paired: number of spectra; "
                                               "map: raster side (n x n pixels) unless --ny/--nx.")] = 10,
    seed: SeedOption = 0,
    mode: Annotated[str, typer.Option(help="chemcam (ChemCam-like, 6144 channels), paired (two spectrometers) or map (8-phase image).")] = "chemcam",
    other_day: Annotated[bool, typer.Option("--other-day/--no-other-day", metavar="", help="paired/map: another day's calibration, "
                                                                  "response and baseline.")] = False,
    locations: Annotated[int, typer.Option(help="chemcam: locations per target.")] = 3,
    shots: Annotated[int, typer.Option(help="chemcam: shots per location.")] = 10,
    targets: Annotated[int, typer.Option(help="paired: number of targets the spectra cycle through.")] = 50,
    ny: Annotated[int | None, typer.Option(help="map: rows.")] = None,
    nx: Annotated[int | None, typer.Option(help="map: columns.")] = None,
    phases: Annotated[int, typer.Option(help="map: number of mineral phases.")] = 8,
    knob: Annotated[list[str] | None, typer.Option(help="NAME=VALUE simulator setting, repeatable "
                                                        "(see speclearn.simulate.libs.LIBSKnobs).")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate LIBS spectra into the folder OUT (spectra, clean, noise/ground truth, targets, groups,
    metadata, compositions, line table) with preview.png."""
    from speclearn.simulate import libs as libs_sim
    if mode not in LIBS_MODES:
        raise InputError(f"--mode must be one of {', '.join(LIBS_MODES)}, got {mode!r}")
    if other_day and mode == "chemcam":
        raise InputError("--other-day applies to --mode paired or map")
    knobs = parse_knobs(knob)
    if mode == "chemcam":
        simulation = libs_sim.simulate_chemcam(n, locations, shots, seed=seed, **knobs)
        size = f"{simulation.spectra.n_spectra} spectra x {simulation.spectra.n_channels} channels"
    elif mode == "paired":
        simulation = libs_sim.simulate_paired(n, seed=seed, n_targets=targets, other_day=other_day, **knobs)
        size = f"{n} paired spectra ({simulation.primary.n_channels} + {simulation.secondary.n_channels} channels)"
    else:
        simulation = libs_sim.simulate_libs_map(ny or n, nx or n, n_phases=phases, seed=seed, other_day=other_day,
                                                **knobs)
        size = f"{ny or n} x {nx or n} map, {phases} phases"
    simulation.write(out, overwrite=overwrite)
    _libs_preview(simulation, mode, Path(out) / "preview.png")
    say(f"wrote {size} to {out}")


def _symbols(text: str, flag: str) -> tuple[str, ...]:
    symbols = tuple(s.strip() for s in text.split(",") if s.strip())
    if not symbols and flag == "--analytes":
        raise InputError(f"{flag} needs at least one element, e.g. As,Cd,Pb")
    return symbols


@app.command("icpms")
def icpms(
    out: OutOption,
    n: Annotated[int, typer.Option("--n", help="Number of spectra.")] = 100,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
    preview: Annotated[bool, typer.Option("--preview/--no-preview", metavar="", help="Write preview.png.")] = True,
    analytes: Annotated[str | None, typer.Option(help="Comma-separated target elements (default: 15 trace metals).")] = None,
    internal_standard: Annotated[str, typer.Option(help="Internal standard element, or 'none'.")] = "In",
    internal_standard_conc: Annotated[float, typer.Option(help="Internal standard concentration, µg/L.")] = 10.0,
    interferents: Annotated[str | None, typer.Option(help="Comma-separated non-target elements ('' for none).")] = None,
    concentration_median: Annotated[float, typer.Option(help="Median analyte concentration, µg/L.")] = 1.0,
    concentration_sigma: Annotated[float, typer.Option(help="Log-normal sigma of concentrations.")] = 1.2,
    range_factor: Annotated[float, typer.Option(help="Widen the concentration distribution by this factor.")] = 1.0,
    polyatomic_scale: Annotated[float, typer.Option(help="Multiply every polyatomic ion level (0: none).")] = 1.0,
    oxide_ratio: Annotated[float, typer.Option(help="MO+/M+ ratio.")] = 0.01,
    doubly_charged_ratio: Annotated[float, typer.Option(help="M2+/M+ ratio of Ba (others scale by Saha).")] = 0.02,
    mass_shift_sd: Annotated[float, typer.Option(help="Mass calibration shift sd, m/z.")] = 0.02,
    drift_sd: Annotated[float, typer.Option(help="Per-run sensitivity drift (log-normal sd).")] = 0.05,
    gaussian_noise: Annotated[float, typer.Option(help="Additive Gaussian noise sd relative to the signal.")] = 0.005,
    poisson: Annotated[bool, typer.Option("--poisson/--no-poisson", metavar="", help="Poisson counting noise.")] = True,
    channels: Annotated[int, typer.Option(help="Number of m/z channels.")] = 10_000,
    mz_min: Annotated[float, typer.Option(help="First m/z.")] = 5.0,
    mz_max: Annotated[float, typer.Option(help="Last m/z.")] = 250.0,
    shape: Annotated[str, typer.Option(help="Peak shape: gaussian or pseudo_voigt.")] = "gaussian",
    dwell_time: Annotated[float, typer.Option(help="Counting time per channel, s.")] = 0.01,
    matrix_effects: Annotated[bool, typer.Option(
        "--matrix-effects/--no-matrix-effects", metavar="", help="Draw RF power, nebuliser flow, conductivity and sample "
                                                     "temperature per spectrum, with the matrix effects they cause; "
                                                     "writes process.csv (for quantify --params).")] = False,
) -> None:
    """Simulate ICP-MS spectra: spectra.csv, clean.csv, targets.csv, peaks.csv, params.csv, truth.json."""
    from speclearn.simulate.icpms import DEFAULT_ANALYTES, ICPMSConfig, ICPMSInstrument, ProcessConfig, simulate_icpms

    check_output(out, overwrite=overwrite)
    instrument = ICPMSInstrument(mz_min=mz_min, mz_max=mz_max, n_channels=channels, shape=shape,
                                 dwell_time=dwell_time)
    config = ICPMSConfig(
        analytes=_symbols(analytes, "--analytes") if analytes is not None else DEFAULT_ANALYTES,
        internal_standard=None if internal_standard.lower() == "none" else internal_standard,
        internal_standard_conc=internal_standard_conc,
        interferents=_symbols(interferents, "--interferents") if interferents is not None else ICPMSConfig.interferents,
        concentration_median=concentration_median, concentration_sigma=concentration_sigma,
        polyatomic_scale=polyatomic_scale, oxide_ratio=oxide_ratio, doubly_charged_ratio=doubly_charged_ratio,
        mass_shift_sd=mass_shift_sd, sensitivity_drift_sd=drift_sd, gaussian_noise_rel=gaussian_noise,
        poisson=poisson, instrument=instrument, process=ProcessConfig() if matrix_effects else None)
    simulation = simulate_icpms(n, seed=seed, config=config, concentration_range_factor=range_factor)
    simulation.write(out, overwrite=overwrite, preview=preview)
    say(f"wrote {n} ICP-MS spectra x {channels} channels ({len(simulation.peaks) // n} peaks each) to {out}")


@app.command("edx")
def edx(
    out: Annotated[Path, typer.Option("--out", help="Output folder (map.zarr, truth, preview.png).")],
    n: Annotated[int | None, typer.Option("--n", help="Square map of N x N pixels.")] = None,
    ny: Annotated[int, typer.Option("--ny", help="Map rows (when --n is not given).")] = 64,
    nx: Annotated[int, typer.Option("--nx", help="Map columns (when --n is not given).")] = 64,
    channels: Annotated[int, typer.Option("--channels", help="Energy channels (10 eV each from 0.1 keV).")] = 2048,
    dose: Annotated[float, typer.Option("--dose", help="Mean counts per pixel.")] = 200.0,
    layout: Annotated[str, typer.Option("--layout", help="particles, layers or gradient.")] = "particles",
    thickness_variation: Annotated[float, typer.Option("--thickness-variation", help="Relative thickness s.d.")] = 0.0,
    beam_kv: Annotated[float, typer.Option("--beam-kv", help="Beam energy (kV).")] = 200.0,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """An EDX spectrum image streamed to Zarr with phase spectra and abundance maps as ground truth."""
    from speclearn.simulate.edx import simulate_edx
    if n is not None:
        ny = nx = n
    if out.exists() and not out.is_dir():
        raise InputError("--out must be a folder", file=out)
    sim = simulate_edx(ny, nx, channels, dose=dose, layout=layout, thickness_variation=thickness_variation,
                       beam_kv=beam_kv, seed=seed, lazy=True)
    sim.write(out, overwrite=overwrite)
    say(f"wrote {ny} x {nx} x {channels} EDX map ({len(sim.phases)} phases, {dose:g} counts/pixel) to {out}")


@app.command("gamma")
def gamma(
    out: OutOption,
    mode: Annotated[str, typer.Option("--mode", help="nuclides (source mixtures) or materials (neutron-induced).")] = "nuclides",
    detector: Annotated[str, typer.Option("--detector", help="nai, labr3, csi or hpge.")] = "nai",
    n: Annotated[int, typer.Option("--n", help="Number of spectra.")] = 100,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """Gamma-ray spectra with ground truth (see `speclearn.gamma.simulate`)."""
    from speclearn.gamma.cli import simulate_command
    simulate_command(out, mode=mode, detector=detector, n=n, seed=seed, overwrite=overwrite)


app.command("mrs")(mrs_cli.simulate)
