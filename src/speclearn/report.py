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


def pyplot():
    """`matplotlib.pyplot` on the file-only Agg backend (figures are written, never shown)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


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
    plt = pyplot()
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


def _spectra_figure(spectra, path: Path, *, other=None, title: str = "", labels=("input", "output"),
                    n: int = 12) -> Path:
    """Up to `n` spectra (robust y limits); with `other` (same ids), input vs output of 3 spectra and residuals."""
    plt = pyplot()
    first = np.asarray(spectra.flat()[:n].compute() if spectra.is_lazy else spectra.flat()[:n], dtype=float)
    xlabel = f"{spectra.axis_kind} ({spectra.axis_unit})" if spectra.axis_unit else spectra.axis_kind
    if other is None:
        fig, ax = plt.subplots(figsize=(8, 3.2), constrained_layout=True)
        for row in first:
            ax.plot(spectra.axis, row, lw=0.7)
        ax.set(xlabel=xlabel, ylabel="intensity", title=title or f"First {len(first)} of {spectra.n_spectra} spectra",
               ylim=robust_limits(first))
        return save_figure(fig, path)
    second = np.asarray(other.flat()[:3].compute() if other.is_lazy else other.flat()[:3], dtype=float)
    same_axis = other.n_channels == spectra.n_channels and np.allclose(other.axis, spectra.axis)
    fig, axes = plt.subplots(2 if same_axis else 1, 1, figsize=(8, 5.5 if same_axis else 3.2), squeeze=False,
                             constrained_layout=True, sharex=True)
    top = axes[0, 0]
    for i in range(len(second)):
        top.plot(spectra.axis, first[i], lw=0.6, alpha=0.6, color=f"C{i}", label=f"{spectra.ids[i]} {labels[0]}")
        top.plot(other.axis, second[i], lw=1.1, color=f"C{i}", label=f"{spectra.ids[i]} {labels[1]}")
    top.set(ylabel="intensity", title=title, ylim=robust_limits(np.concatenate([first[:3].ravel(), second.ravel()])))
    top.legend(fontsize=7, ncol=3)
    if same_axis:
        residual = first[:len(second)] - second
        for i, row in enumerate(residual):
            axes[1, 0].plot(spectra.axis, row, lw=0.6, color=f"C{i}")
        axes[1, 0].set(ylabel=f"{labels[0]} - {labels[1]}", ylim=robust_limits(residual))
    axes[-1, 0].set_xlabel(xlabel)
    return save_figure(fig, path)


def _table_figure(table: pd.DataFrame, path: Path) -> Path | None:
    """Predicted values: each numeric target as points with its interval (<t>_lo/<t>_hi), or class counts."""
    plt = pyplot()
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])
               and not str(c).endswith(("_lo", "_hi")) and f"{c}_lo" in table.columns] or \
              [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])][:6]
    if "class" in table.columns:
        counts = table["class"].astype(str).value_counts()
        fig, ax = plt.subplots(figsize=(8, 3), constrained_layout=True)
        ax.bar(counts.index, counts.to_numpy())
        ax.set(ylabel="spectra", title="Predicted classes")
        ax.tick_params(axis="x", rotation=45)
        return save_figure(fig, path)
    if not numeric:
        return None
    numeric = numeric[:6]
    shown = table.iloc[:60]
    fig, axes = plt.subplots(len(numeric), 1, figsize=(8, 1.9 * len(numeric) + 0.6), squeeze=False,
                             constrained_layout=True, sharex=True)
    x = np.arange(len(shown))
    for ax, column in zip(axes[:, 0], numeric):
        values = shown[column].to_numpy(float)
        if f"{column}_lo" in shown.columns:
            low, high = shown[f"{column}_lo"].to_numpy(float), shown[f"{column}_hi"].to_numpy(float)
            ax.errorbar(x, values, yerr=[np.clip(values - low, 0, None), np.clip(high - values, 0, None)], fmt=".",
                        lw=0.8, capsize=2, label="prediction and interval")
            ax.legend(fontsize=7)
        else:
            ax.plot(x, values, ".")
        ax.set_ylabel(str(column), fontsize=8)
        ax.set_ylim(*robust_limits(values))
    axes[-1, 0].set_xlabel(f"spectrum (first {len(shown)} of {len(table)})")
    return save_figure(fig, path)


def _parity_figure(truth: pd.DataFrame, predicted: pd.DataFrame, path: Path) -> Path:
    """Predicted against true values, one panel per target, with the y = x line."""
    plt = pyplot()
    columns = [c for c in truth.columns if c in predicted.columns][:6]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.2), squeeze=False, constrained_layout=True)
    for ax, column in zip(axes[0], columns):
        x, y = truth[column].to_numpy(float), predicted.loc[truth.index, column].to_numpy(float)
        ax.plot(x, y, ".", ms=4)
        low, high = robust_limits(np.concatenate([x, y]), 0, 100)
        ax.plot([low, high], [low, high], "k--", lw=0.8)
        ax.set(xlim=(low, high), ylim=(low, high), xlabel=f"true {column}", ylabel="predicted", title=str(column))
    return save_figure(fig, path)


def command_report(path: str | Path, title: str, *, inputs: dict[str, object], spectra=None, output=None,
                   table: pd.DataFrame | None = None, model: str | Path | None = None,
                   maps: dict[str, np.ndarray] | None = None, components=None, parity: tuple[pd.DataFrame, pd.DataFrame] | None = None,
                   notes: Sequence[str] = (), overwrite: bool = False) -> Path:
    """The `--report FILE` of a command: what went in, the model (and why it was chosen), the results
    (table head and summary, intervals, parity with the training targets), and the first figures to
    look at, in one self-contained HTML file."""
    import tempfile
    report = Report(title, intro=" ".join(notes))
    report.add(Section("What went in", table=pd.DataFrame({"value": [str(v) for v in inputs.values()]},
                                                          index=pd.Index(list(inputs), name="input"))))
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp)
        if spectra is not None:
            text = f"{spectra.n_spectra} spectra, {spectra.describe_axis()}"
            name = _spectra_figure(spectra, figures / "input.png").name
            report.add(Section("Input spectra", text=text, figures=[name]))
        if model is not None:
            report.add(_model_section(Path(model)))
        if output is not None and spectra is not None:
            name = _spectra_figure(spectra, figures / "output.png", other=output, title="Input and output").name
            report.add(Section("Output spectra", text=f"{output.n_spectra} spectra, {output.describe_axis()}",
                               figures=[name]))
        if table is not None:
            numeric = table.select_dtypes("number")
            summary = numeric.describe().T[["mean", "std", "min", "max"]] if len(numeric.columns) else None
            shown = _table_figure(table, figures / "results.png")
            report.add(Section("Results", text=f"{len(table)} rows; the first 20 below.", table=table.head(20),
                               figures=[shown.name] if shown else []))
            if summary is not None:
                report.add(Section("Summary of the results", table=summary))
        if components is not None:
            shown = _spectra_figure(components, figures / "components.png", title="Component spectra")
            report.add(Section("Component spectra", text=", ".join(components.ids), figures=[shown.name]))
        if parity is not None:
            shown = _parity_figure(*parity, figures / "parity.png")
            report.add(Section("Fit to the training targets", text="In-sample predictions of the saved model "
                               "against the targets it was trained on (cross-validated scores are in the Model "
                               "section when --method auto ranked the candidates).", figures=[shown.name]))
        if maps:
            shown = plot_maps(maps, figures / "maps.png", vmax=None)
            report.add(Section("Maps", figures=[shown.name]))
        text = report.to_html(figures)
    with atomic_path(path, overwrite=overwrite) as tmp_path:
        tmp_path.write_text(text)
    return Path(path)


def _model_section(folder: Path) -> Section:
    """The saved model: type, parameters, targets and, for `--method auto`, the ranking that chose it."""
    from speclearn.models import load_model
    from speclearn.models.selection import KEY
    saved = load_model(folder)
    params = {k: v for k, v in saved.params.items() if isinstance(v, (int, float, str, bool))}
    section = Section("Model", text=f"{folder}: {saved.model_type} (speclearn {saved.version}); parameters: "
                                    + (", ".join(f"{k}={v}" for k, v in params.items()) or "none")
                                    + (f"; targets: {', '.join(map(str, saved.targets))}" if saved.targets else ""))
    ranking = saved.extra.get(KEY)
    if isinstance(ranking, dict) and isinstance(ranking.get("rows"), list) and ranking["rows"]:
        section.table = pd.DataFrame(ranking["rows"]).drop(columns=["params"], errors="ignore")
        section.verdict = f"--method auto chose {ranking.get('winner', '?')}: {ranking.get('reason', '')}"
    return section
