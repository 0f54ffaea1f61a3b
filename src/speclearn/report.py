"""Self-contained HTML reports (demo, benchmarks): sections of text, a verdict, tables and figures.

Figures are embedded in the HTML (base64 PNG), so the report is one file that can be mailed or
archived; the PNGs are also kept beside it. Empty table cells (NaN/None) read "n/a" with a note.
`verdict` words a comparison ("WNNLS beats CAEM-MT: 6.3 % vs 10.3 % mean error"), `robust_limits`
keeps one spike from flattening a plot, and `plot_maps` draws maps with colour bars and labels.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from speclearn.io.atomic import atomic_path

MISSING = "n/a"


@dataclass
class Section:
    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figures: list[str] = field(default_factory=list)
    verdict: str = ""
    notes: list[str] = field(default_factory=list)


def verdict(winner: str, winner_value: float, loser: str, loser_value: float, what: str, *, unit: str = "",
            lower_is_better: bool = True, digits: int = 3) -> str:
    """'A beats B: 6.3 % vs 10.3 % mean error (39 % lower)' (or 'A and B tie' within 1 %)."""
    if not lower_is_better:
        winner_value, loser_value = -winner_value, -loser_value
    if winner_value > loser_value:
        winner, winner_value, loser, loser_value = loser, loser_value, winner, winner_value
    sign = 1 if lower_is_better else -1
    a, b = sign * winner_value, sign * loser_value
    space = "" if unit in ("", "%") else " "
    shown = f"{a:.{digits}g}{space}{unit} vs {b:.{digits}g}{space}{unit} {what}"
    relative = abs(a - b) / max(abs(b), 1e-300)
    if relative < 0.01:
        return f"{winner} and {loser} tie: {shown}"
    change = f"{100 * relative:.0f} % {'lower' if lower_is_better else 'higher'}"
    return f"{winner} beats {loser}: {shown} ({change})"


def robust_limits(values: np.ndarray, low: float = 0.5, high: float = 99.5, margin: float = 0.05) -> tuple[float, float]:
    """Axis limits from percentiles of the finite values, with a margin: a few spikes stay off-scale."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low, high])
    pad = margin * (hi - lo) if hi > lo else max(abs(hi), 1.0) * margin
    return float(lo - pad), float(hi + pad)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return MISSING
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return html.escape(str(value))


def table_html(table: pd.DataFrame) -> tuple[str, bool]:
    """(HTML table, whether any cell was missing); missing cells read `MISSING`."""
    show_index = not isinstance(table.index, pd.RangeIndex)
    head = ([html.escape(str(table.index.name or ""))] if show_index else []) + [html.escape(str(c)) for c in table.columns]
    rows, missing = [], False
    for index, row in table.iterrows():
        cells = [_cell(v) for v in row.tolist()]
        missing |= MISSING in cells
        label = [f"<th>{html.escape(str(index))}</th>"] if show_index else []
        rows.append("<tr>" + "".join(label) + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    return f"<table><thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>", missing


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img src='data:image/png;base64,{data}' alt='{html.escape(path.name)}'>"


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)
    intro: str = ""

    def add(self, section: Section) -> None:
        self.sections.append(section)

    def to_html(self, figure_dir: str | Path = ".") -> str:
        """The report with every figure (a PNG in `figure_dir`) embedded."""
        figure_dir = Path(figure_dir)
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
                 "<style>body{font-family:sans-serif;max-width:1000px;margin:auto;padding:0 1em;line-height:1.4}"
                 "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
                 "text-align:right}th{background:#f4f4f4}img{max-width:100%;display:block;margin:0.5em 0}"
                 ".verdict{background:#eef6ee;border-left:4px solid #3a7;padding:0.4em 0.8em;font-weight:bold}"
                 ".note{color:#555;font-size:0.9em}</style>",
                 f"</head><body><h1>{html.escape(self.title)}</h1>"]
        if self.intro:
            parts.append(f"<p>{html.escape(self.intro)}</p>")
        summary = [s for s in self.sections if s.verdict]
        if summary:
            parts.append("<h2>Summary</h2><ul>" + "".join(f"<li><b>{html.escape(s.title)}</b>: {html.escape(s.verdict)}</li>"
                                                          for s in summary) + "</ul>")
        for section in self.sections:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
            if section.verdict:
                parts.append(f"<p class='verdict'>{html.escape(section.verdict)}</p>")
            if section.text:
                parts.append(f"<p>{html.escape(section.text)}</p>")
            notes = list(section.notes)
            if section.table is not None:
                table, missing = table_html(section.table)
                parts.append(table)
                if missing:
                    notes.append(f"{MISSING}: the method does not produce this quantity.")
            parts.extend(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
            parts.extend(_image(figure_dir / name) for name in section.figures)
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the self-contained HTML; figures are read from the report's folder."""
        path = Path(path)
        text = self.to_html(path.parent)
        with atomic_path(path, overwrite=overwrite) as tmp:
            tmp.write_text(text)
        return path


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def plot_maps(rows: dict[str, np.ndarray], path: str | Path, *, columns: Sequence[str] | None = None,
              label: str = "abundance", vmin: float | None = 0.0, vmax: float | None = None) -> Path:
    """One row of maps per entry (row label -> (K, y, x)), each with a colour bar; all maps of a
    column share one colour scale (robust percentiles unless vmin/vmax are given)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    k = max(maps.shape[0] for maps in rows.values())
    names = list(columns) if columns is not None else [f"component {i}" for i in range(k)]
    fig, axes = plt.subplots(len(rows), k, figsize=(2.9 * k, 2.6 * len(rows)), squeeze=False, constrained_layout=True)
    for i in range(k):
        column = np.concatenate([m[i].ravel() for m in rows.values() if i < m.shape[0]])
        lo, hi = robust_limits(column, 0.5, 99.5, margin=0.0)
        lo, hi = (lo if vmin is None else vmin), (hi if vmax is None else vmax)
        for r, (row, maps) in enumerate(rows.items()):
            ax = axes[r, i]
            if i >= maps.shape[0]:
                ax.axis("off")
                continue
            image = ax.imshow(maps[i], vmin=lo, vmax=max(hi, lo + 1e-12), cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(names[i], fontsize=10)
            if i == 0:
                ax.set_ylabel(row, fontsize=10)
            fig.colorbar(image, ax=ax, shrink=0.85).set_label(label, fontsize=8)
    return save_figure(fig, path)
