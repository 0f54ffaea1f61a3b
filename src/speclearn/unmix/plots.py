"""Figures of unmixing results: abundance maps and component spectra (optionally against the truth)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np


def plot_maps(rows: dict[str, np.ndarray], path: str | Path, *, vmax: float | None = 1.0) -> Path:
    """One row of K maps per entry of `rows` (label -> (K, y, x))."""
    from speclearn.report import pyplot, save_figure
    plt = pyplot()
    k = max(maps.shape[0] for maps in rows.values())
    fig, axes = plt.subplots(len(rows), k, figsize=(2.4 * k, 2.4 * len(rows)), squeeze=False)
    for r, (label, maps) in enumerate(rows.items()):
        for i in range(k):
            ax = axes[r, i]
            ax.axis("off")
            if i < maps.shape[0]:
                ax.imshow(maps[i], vmin=0, vmax=vmax, cmap="viridis")
                ax.set_title(textwrap.fill(f"{label}: {i}", 24), fontsize=7)
    return save_figure(fig, path)


def plot_spectra(axis: np.ndarray, rows: dict[str, np.ndarray], path: str | Path, *, xlabel: str = "channel",
                 xmax: float | None = None) -> Path:
    """Component k of every entry (label -> (K, channels)) overlaid in panel k."""
    from speclearn.report import pyplot, save_figure
    plt = pyplot()
    k = max(spectra.shape[0] for spectra in rows.values())
    fig, axes = plt.subplots(k, 1, figsize=(8, 1.8 * k), squeeze=False, sharex=True)
    for label, spectra in rows.items():
        for i in range(spectra.shape[0]):
            axes[i, 0].plot(axis, spectra[i], lw=0.8, label=label)
    for i in range(k):
        axes[i, 0].set_ylabel(f"comp. {i}", fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=len(rows))
    axes[-1, 0].set_xlabel(xlabel)
    if xmax is not None:
        axes[-1, 0].set_xlim(axis[0], min(axis[-1], xmax))
    return save_figure(fig, path)
