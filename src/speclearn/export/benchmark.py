"""Tiny trained models of every network kind, and the inference-speed benchmark of their exports.

`tiny_models(directory)` trains one small model per network kind on small simulated data (a few
epochs: the point is a real saved model, not accuracy) and saves it. `run_benchmark` exports each
to ONNX and TorchScript and times batch inference against PyTorch eager on 1 and 2 threads.
"""
from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from speclearn.core.spectra import Spectra
from speclearn.io.atomic import markdown_table, write_result
from speclearn.metrics import best_times

KINDS = ("denoise.supervised", "denoise.siamese", "classify.cnn", "transfer.mlp", "transfer.vae-mlp", "generate.cvae",
         "quantify.caemmt", "quantify.twohead")
SCALES = {"quick": {"batch": 256, "repeats": 5}, "full": {"batch": 1024, "repeats": 20}}


def _lines(n: int, axis: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).uniform(axis[0], axis[-1], 12)
    width = (axis[-1] - axis[0]) / 150
    bands = np.exp(-0.5 * ((axis[None] - centres[:, None]) / width) ** 2)
    return rng.gamma(1.0, 50.0, (n, 12)) @ bands + 5.0


def _spectra(X: np.ndarray, axis: np.ndarray, prefix: str = "s", kind: str = "wavelength") -> Spectra:
    ids = pd.Index([f"{prefix}{i:03d}" for i in range(len(X))], name="id")
    return Spectra(X, axis, axis_kind=kind, meta=pd.DataFrame(index=ids))


def tiny_models(directory: str | Path, *, seed: int = 0,
                kinds: tuple[str, ...] = KINDS) -> dict[str, tuple[Path, Spectra | None]]:
    """Train and save one small model per network kind; returns kind -> (model folder, spectra of
    the kind the model takes, for `Network.prepare`; None for the cVAE, which takes a condition)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    axis = np.linspace(300.0, 700.0, 512)
    clean = _lines(48, axis, seed)
    noisy = _spectra(clean + rng.normal(0, 3.0, clean.shape), axis)
    groups = pd.Series(np.repeat([f"t{i}" for i in range(8)], 6), index=noisy.meta.index)
    made: dict[str, tuple[Path, Spectra | None]] = {}
    icpms = None
    for kind in kinds:
        path, sample = directory / kind, noisy
        if kind == "denoise.supervised":
            from speclearn.denoise import SupervisedDenoiser
            model = SupervisedDenoiser(width=4, levels=1, epochs=2, device="cpu", seed=seed)
            model.fit(noisy, clean=clean).save(path)
        elif kind == "denoise.siamese":
            from speclearn.denoise import SpectroscopyNet
            SpectroscopyNet(depth=3, width=4, downsample=2, epochs=2, device="cpu", seed=seed).fit(
                noisy, groups=groups).save(path)
        elif kind == "classify.cnn":
            from speclearn.classify import CNNClassifier
            labels = pd.Series(np.where(clean[:, :64].sum(1) > np.median(clean[:, :64].sum(1)), "a", "b"),
                               index=noisy.meta.index)
            CNNClassifier(epochs=2, pretrain=False, device="cpu", seed=seed).fit(noisy, labels).save(path)
        elif kind.startswith("transfer."):
            from speclearn.transfer import METHODS
            secondary_axis = np.linspace(320.0, 680.0, 96)
            secondary = _spectra(_lines(48, secondary_axis, seed) + rng.normal(0, 1.0, (48, 96)), secondary_axis)
            small = dict(hidden=(32, 16), latent=4, mlp_hidden=(16,), batch_size=16, baseline_window=15, seed=seed)
            epochs = {"vae_epochs": 2, "mlp_epochs": 2} if kind == "transfer.vae-mlp" else {"epochs": 2}
            METHODS[kind.removeprefix("transfer.")](**small, **epochs).fit(noisy, secondary).save(path)
            sample = secondary
        elif kind == "generate.cvae":
            from speclearn.generate import ConditionalVAE
            targets = pd.DataFrame({"A": rng.uniform(0, 10, 48), "B": rng.uniform(0, 10, 48)}, index=noisy.meta.index)
            ConditionalVAE(epochs=2, latent_dim=2, hidden=16, device="cpu", seed=seed).fit(noisy, targets).save(path)
            sample = None
        elif kind.startswith("quantify."):
            from speclearn.quantify import METHODS
            from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms
            config = ICPMSConfig(analytes=("Cu", "As", "Mo"), interferents=("Zr",),
                                 instrument=ICPMSInstrument(mz_min=55.0, mz_max=120.0, n_channels=900))
            icpms = icpms or simulate_icpms(16, seed=seed + 1, config=config, workers=1)
            data, sample = icpms, icpms.spectra
            model = METHODS[kind.removeprefix("quantify.")](epochs=2, max_seconds=5, progress=False)
            model.fit(data.spectra, data.targets, clean=data.spectra.with_intensity(data.clean), peaks=data.peaks)
            model.save(path)
        else:
            raise ValueError(f"unknown network kind {kind!r}")
        made[kind] = (path, sample)
    return made


def run_benchmark(out_dir: str | Path, *, scale: str = "quick", seed: int = 0) -> dict:
    """Spectra/s of ONNX Runtime and TorchScript vs PyTorch eager, per network kind, on 1 and 2 threads."""
    from speclearn.export import Runner, export, network
    out_dir = Path(out_dir)
    settings = SCALES[scale]
    batch, repeats = settings["batch"], settings["repeats"]
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    scratch = tempfile.TemporaryDirectory(prefix="speclearn-export-")
    work = Path(scratch.name)
    models = tiny_models(work, seed=seed)
    rows = []
    previous = torch.get_num_threads()
    for kind, (path, sample) in models.items():
        net = network(path)
        if net.prepare is not None and sample is not None:  # real inputs, repeated up to the batch size
            inputs = tuple(np.resize(np.asarray(a, np.float32), (batch, a.shape[1])) for a in net.prepare(sample))
        else:
            inputs = tuple(t.numpy() for t in net.example(batch, seed=seed))
        files = {fmt: export(net, work / f"{kind}{suffix}", fmt)
                 for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt"))}
        module = net.module.eval()
        for threads in (1, 2):
            torch.set_num_threads(threads)
            tensors = tuple(torch.from_numpy(a) for a in inputs)

            def eager():
                with torch.no_grad():
                    module(*tensors)
            runners = {fmt: Runner(file, threads=threads) for fmt, file in files.items()}
            times = best_times({"eager": eager, **{fmt: (lambda r=r: r(*inputs)) for fmt, r in runners.items()}},
                               repeats, min_seconds=0.05, pause=0.2, warmup=3)
            rows.append({"network": kind, "threads": threads, "batch": batch,
                         "inputs": {k: v for k, v in net.inputs.items()},
                         **{f"{k}_spectra_per_s": batch / v for k, v in times.items()},
                         "onnx_vs_eager": times["eager"] / times["onnx"],
                         "torchscript_vs_eager": times["eager"] / times["torchscript"]})
    torch.set_num_threads(previous)
    scratch.cleanup()
    summary = {f"{r['network']} ({r['threads']} thr)": f"ONNX {r['onnx_vs_eager']:.2f}x, TorchScript "
               f"{r['torchscript_vs_eager']:.2f}x eager" for r in rows}
    result = {"summary": summary, "benchmark": "export", "scale": scale, "seed": seed, "batch": batch, "repeats": repeats,
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "torch": torch.__version__, "wall_s": time.perf_counter() - start, "cpus": os.cpu_count(),
              "load_average": [load_start, os.getloadavg()[0]], "rows": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_result(out_dir / "export.json", result)
    write_result(out_dir / "export.md", _markdown(result))
    return result


def _markdown(result: dict) -> str:
    lines = [f"# Export: ONNX Runtime and TorchScript vs PyTorch eager ({result['scale']} scale)", "",
             f"Batches of {result['batch']} spectra; time per batch = best of {result['repeats']} rounds of >= 50 ms, "
             "interleaved across eager, ONNX and TorchScript, after 3 warm-up calls (on a shared machine other "
             "processes only add time); tiny "
             f"models trained 2 epochs (speed does not depend on the training); {result['machine']}, torch "
             f"{result['torch']}; wall time {result['wall_s']:.0f} s.", "",
             *markdown_table(result["rows"], {
                 "network": "{network}", "threads": "{threads}",
                 "input": lambda row: ", ".join(f"{k} {v}" for k, v in row["inputs"].items()),
                 "eager (spectra/s)": "{eager_spectra_per_s:,.0f}", "ONNX (spectra/s)": "{onnx_spectra_per_s:,.0f}",
                 "TorchScript (spectra/s)": "{torchscript_spectra_per_s:,.0f}", "ONNX / eager": "{onnx_vs_eager:.2f}x",
                 "TorchScript / eager": "{torchscript_vs_eager:.2f}x"})]
    lines += ["", "Target: exported inference at least as fast as PyTorch eager for every network."]
    for fmt, name in (("onnx", "ONNX Runtime"), ("torchscript", "TorchScript")):
        slower = [r for r in result["rows"] if r[f"{fmt}_vs_eager"] < 1.0]
        lines.append(f"- {name}: at least as fast on {len(result['rows']) - len(slower)} of {len(result['rows'])} "
                     "rows" + ("; met everywhere." if not slower else "; NOT met on " + ", ".join(
                         f"{r['network']} ({r['threads']} thr, {r[f'{fmt}_vs_eager']:.2f}x)" for r in slower) + "."))
    neither = [r for r in result["rows"] if max(r["onnx_vs_eager"], r["torchscript_vs_eager"]) < 1.0]
    lines.append("- At least one export format as fast as eager on every row: " + (
        "yes." if not neither else "NO: " + ", ".join(f"{r['network']} ({r['threads']} thr)" for r in neither) + "."))
    load = result.get("load_average")
    if load:
        lines += ["", f"Machine load (1-minute load average) {load[0]:.1f} at the start and {load[1]:.1f} at the end "
                  f"on {result.get('cpus')} CPUs; timing rounds interleave eager, ONNX and TorchScript with a pause "
                  "between them (ONNX Runtime's idle threads spin after a call), and an ONNX `Runner` given 2 "
                  "threads keeps a 1-thread session when that is faster on its first input."]
    return "\n".join(lines) + "\n"
