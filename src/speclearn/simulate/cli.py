"""`speclearn simulate ...`: synthetic spectra with their ground truth, one command per technique."""
from __future__ import annotations

from typing import Annotated

import typer

from speclearn.cli.common import OutOption, OverwriteOption, SeedOption, say
from speclearn.core.errors import InputError
from speclearn.io import check_output

app = typer.Typer(no_args_is_help=True, help="Physics-based synthetic spectra with ground truth.")


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
    preview: Annotated[bool, typer.Option("--preview/--no-preview", help="Write preview.png.")] = True,
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
    poisson: Annotated[bool, typer.Option("--poisson/--no-poisson", help="Poisson counting noise.")] = True,
    channels: Annotated[int, typer.Option(help="Number of m/z channels.")] = 10_000,
    mz_min: Annotated[float, typer.Option(help="First m/z.")] = 5.0,
    mz_max: Annotated[float, typer.Option(help="Last m/z.")] = 250.0,
    shape: Annotated[str, typer.Option(help="Peak shape: gaussian or pseudo_voigt.")] = "gaussian",
    dwell_time: Annotated[float, typer.Option(help="Counting time per channel, s.")] = 0.01,
) -> None:
    """Simulate ICP-MS spectra: spectra.csv, clean.csv, targets.csv, peaks.csv, params.csv, truth.json."""
    from speclearn.simulate.icpms import DEFAULT_ANALYTES, ICPMSConfig, ICPMSInstrument, simulate_icpms

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
        poisson=poisson, instrument=instrument)
    simulation = simulate_icpms(n, seed=seed, config=config, concentration_range_factor=range_factor)
    simulation.write(out, overwrite=overwrite, preview=preview)
    say(f"wrote {n} ICP-MS spectra x {channels} channels ({len(simulation.peaks) // n} peaks each) to {out}")
