"""Speed and memory of the simulators: one row per generator, each run in a fresh process.

Every row states its scale (spectra, channels), wall time, CPU time and peak resident memory of
the process that ran it, against its target. Add a generator by adding a function to
`CASES` that takes (scale, seed) and returns the row's fields.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from speclearn.io.atomic import markdown_table, write_result
from speclearn.metrics import run_measured, timed

SCALES = ("quick", "full")


def _icpms_case(scale: str, seed: int) -> dict:
    from speclearn.simulate.icpms import ICPMSConfig, simulate_icpms
    n = 10_000 if scale == "full" else 1_000
    config = ICPMSConfig()
    sim, wall = timed(lambda: simulate_icpms(n, seed=seed, config=config))
    return {"generator": "icpms", "n_spectra": n, "n_channels": sim.spectra.n_channels,
            "peaks_per_spectrum": len(sim.peaks) // n, "wall_s": wall, "target_s": 60.0,
            "target_scale": "10,000 spectra x 10,000 channels on 2 cores",
            "output": "in memory: noisy + clean float32, peaks/params tables (no file writing)"}


#: generator name -> function(scale, seed) returning the row (must include wall_s).
CASES: dict[str, Callable[[str, int], dict]] = {"icpms": _icpms_case}


def _run_case(name: str, scale: str, seed: int) -> dict:
    """Run one case in a fresh process so its peak memory is its own."""
    run = run_measured("speclearn.simulate.benchmark:run_case", name=name, scale=scale, seed=seed)
    return {**run["result"], "cpu_s": run["cpu_s"], "peak_rss_mb": run["peak_rss_mb"]}


def run_case(name: str, scale: str, seed: int) -> dict:
    """One generator's row (called in the measuring process)."""
    return CASES[name](scale, seed)


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0,
                  cases: list[str] | None = None) -> dict:
    """Time every generator at `scale`; write simulate_speed.json/.md and a PNG into `out_dir`."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    rows = []
    for name in cases or list(CASES):
        row = {"scale": scale, "seed": seed, **_run_case(name, scale, seed)}
        row["target_met"] = bool(row["wall_s"] < row["target_s"]) if scale == "full" else None
        rows.append(row)
    result = {
        "benchmark": "simulate_speed", "scale": scale, "seed": seed,
        "machine": {"cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_1min_before": load_before, "load_average_1min_after": os.getloadavg()[0]},
        "note": ("wall_s over cpu_s shows contention: the machine may be shared; a target is judged on "
                 "the full scale only"),
        "rows": rows,
        "summary": summarise(rows),
    }
    _write(result, out_dir)
    return result


def summarise(rows: list[dict]) -> dict:
    """Per generator: wall and CPU seconds, peak memory and whether the target was met."""
    return {row["generator"]: {key: row[key] for key in ("n_spectra", "n_channels", "wall_s", "cpu_s",
                                                           "peak_rss_mb", "target_met")} for row in rows}


def _write(result: dict, out_dir: Path) -> None:
    from speclearn.report import pyplot, save_figure
    plt = pyplot()

    write_result(out_dir / "simulate_speed.json", result)
    table = pd.DataFrame(result["rows"])
    columns = ["generator", "scale", "n_spectra", "n_channels", "wall_s", "cpu_s", "peak_rss_mb", "target_s",
               "target_met"]
    lines = [f"### simulate_speed ({result['scale']})", "",
             f"Machine: {result['machine']}", "", result["note"], "",
             *markdown_table([row for _, row in table.iterrows()], {
                 c: lambda row, c=c: f"{row[c]:.1f}" if isinstance(row[c], float) else row[c] for c in columns})]
    lines += ["", *[f"- {row['generator']}: {row['output']}; target: {row['target_scale']}"
                    for _, row in table.iterrows()]]
    write_result(out_dir / "simulate_speed.md", "\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(6, 3))
    labels = [f"{r['generator']}\n{r['n_spectra']}x{r['n_channels']}" for r in result["rows"]]
    ax.bar(labels, table["wall_s"], color="C0", label="wall time")
    ax.bar(labels, table["cpu_s"], color="none", edgecolor="C1", label="CPU time")
    for x, target in enumerate(table["target_s"]):
        ax.hlines(target, x - 0.4, x + 0.4, color="C3", ls="--", label="target" if x == 0 else None)
    ax.set(ylabel="seconds", title=f"Simulator speed ({result['scale']})")
    ax.legend(fontsize=8)
    save_figure(fig, out_dir / "simulate_speed.png")
