"""`speclearn simulate ...`: synthetic spectra with full ground truth."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speclearn.cli.common import OverwriteOption, SeedOption, say
from speclearn.core.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Simulate spectra with full ground truth.")


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
