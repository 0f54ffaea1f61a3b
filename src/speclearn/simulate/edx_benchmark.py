"""Speed and memory of streaming a simulated EDX spectrum image to Zarr (target: 256 x 256 x 2048 in < 60 s, < 2 GB)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from speclearn.metrics import run_measured
from speclearn.io.atomic import markdown_table, write_result

SCALES = {"quick": [(64, 64, 2048), (128, 128, 2048)], "full": [(64, 64, 2048), (128, 128, 2048), (256, 256, 2048)]}


def stream_job(path: str, ny: int, nx: int, n_channels: int, seed: int) -> dict:
    """What the measured process runs: stream one map and report its size on disk."""
    from speclearn.simulate.edx import stream_edx_to_zarr
    stream_edx_to_zarr(path, ny, nx, n_channels, dose=200, seed=seed)
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return {"zarr_mb": size / 2**20}


def run_benchmark(out_dir: Path, *, scale: str = "quick", seed: int = 0) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="edx-bench-"))
    try:
        for ny, nx, n_channels in SCALES[scale]:
            run = run_measured("speclearn.simulate.edx_benchmark:stream_job", path=str(work / f"{ny}.zarr"),
                               ny=ny, nx=nx, n_channels=n_channels, seed=seed)
            rows.append({"map": f"{ny} x {nx} x {n_channels}", "dose": 200, "wall_s": round(run["wall_s"], 2),
                         "peak_rss_mb": round(run["peak_rss_mb"], 1), "zarr_mb": round(run["result"]["zarr_mb"], 1),
                         "values_per_s_M": round(ny * nx * n_channels / run["wall_s"] / 1e6, 1)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    target = next((r for r in rows if r["map"] == "256 x 256 x 2048"), None)
    verdict = ("256 x 256 x 2048 not run at this scale (use --scale full)" if target is None else
               f"256 x 256 x 2048: {target['wall_s']} s (target < 60 s: {'met' if target['wall_s'] < 60 else 'NOT met'}), "
               f"peak RSS {target['peak_rss_mb']} MB (target < 2048 MB: {'met' if target['peak_rss_mb'] < 2048 else 'NOT met'})")
    result = {"benchmark": "edx_simulate_speed", "scale": scale, "seed": seed, "cpu_count": os.cpu_count(),
              "threads_env": os.environ.get("OMP_NUM_THREADS"), "rows": rows, "verdict": verdict,
              "note": "wall time includes generating Poisson counts and writing compressed Zarr; peak RSS is the "
                      "whole process (Python + imports included); measured on a shared 2-core machine"}
    write_result(out_dir / "edx_simulate_speed.json", result)
    lines = ["# EDX spectrum image streamed to Zarr", "", f"scale: {scale}; {result['note']}", "",
             *markdown_table(rows, {"map": "{map}", "dose": "{dose}", "wall (s)": "{wall_s}",
                                    "peak RSS (MB)": "{peak_rss_mb}", "Zarr on disk (MB)": "{zarr_mb}",
                                    "M values/s": "{values_per_s_M}"})]
    lines += ["", verdict, ""]
    write_result(out_dir / "edx_simulate_speed.md", "\n".join(lines))
    return result
