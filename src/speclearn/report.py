"""Small self-contained HTML reports (demo, benchmarks): sections of text, tables and PNG figures."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from speclearn.io.atomic import atomic_path


@dataclass
class Section:
    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figures: list[str] = field(default_factory=list)


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)

    def add(self, section: Section) -> None:
        self.sections.append(section)

    def to_html(self) -> str:
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
                 "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
                 "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}</style>",
                 f"</head><body><h1>{html.escape(self.title)}</h1>"]
        for section in self.sections:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
            if section.text:
                parts.append(f"<p>{html.escape(section.text)}</p>")
            if section.table is not None:
                show_index = not isinstance(section.table.index, pd.RangeIndex)
                parts.append(section.table.to_html(float_format=lambda v: f"{v:.4g}", border=0, index=show_index))
            parts.extend(f"<img src='{html.escape(name)}' alt='{html.escape(name)}'>" for name in section.figures)
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, path: str | Path, *, overwrite: bool = True) -> Path:
        with atomic_path(path, overwrite=overwrite) as tmp:
            tmp.write_text(self.to_html())
        return Path(path)


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)
