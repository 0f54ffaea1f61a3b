"""The HTML report: self-contained, verdicts in words, no NaN cells, robust scaling; a Chromium look."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from speclearn.report import Report, Section, plot_maps, robust_limits, save_figure, verdict


def test_verdict_says_who_won_and_by_how_much():
    assert verdict("WNNLS", 6.3, "CAEM-MT", 10.3, "mean error", unit="%") == \
        "WNNLS beats CAEM-MT: 6.3% vs 10.3% mean error (39 % lower)"
    assert verdict("A", 12.0, "B", 6.0, "RMSE", unit="g/L").startswith("B beats A: 6 g/L vs 12 g/L")
    assert verdict("A", 0.9, "B", 0.8, "R2", lower_is_better=False) == "A beats B: 0.9 vs 0.8 R2 (12 % higher)"
    assert verdict("A", 1.0, "B", 1.001, "RMSE").startswith("A and B tie")


def test_robust_limits_ignore_a_spike():
    values = np.concatenate([np.random.default_rng(0).uniform(0, 1, 2000), [-147.0]])
    low, high = robust_limits(values)
    assert -0.1 < low < 0.05 and 0.95 < high < 1.1


def test_report_is_self_contained_without_nan_cells(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    save_figure(fig, tmp_path / "line.png")
    plot_maps({"truth": np.random.default_rng(1).uniform(0, 1, (2, 8, 8))}, tmp_path / "maps.png",
              label="fraction", vmax=1.0)
    table = pd.DataFrame({"error (%)": [6.3, 10.3], "PNR (dB)": [np.nan, 21.0]}, index=["WNNLS", "CAEM-MT"])
    report = Report("t")
    report.add(Section("s", "text", table=table, figures=["line.png", "maps.png"],
                       verdict=verdict("WNNLS", 6.3, "CAEM-MT", 10.3, "mean error", unit="%")))
    html = report.write(tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "src='line.png'" not in html
    assert "NaN" not in html and "nan" not in html and "n/a" in html
    assert "WNNLS beats CAEM-MT" in html and html.index("Summary") < html.index("<table>")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    plot_maps({"found": np.random.default_rng(2).uniform(0, 1, (3, 16, 16))}, tmp_path / "maps.png")
    Report("rendering check", [Section("maps", "three maps", figures=["maps.png"])]).write(tmp_path / "r.html")
    html_only = tmp_path / "alone"
    html_only.mkdir()
    shutil.copy(tmp_path / "r.html", html_only / "r.html")  # no PNG beside it: the page must not need one
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-extensions", "--no-first-run", "--hide-scrollbars", "--window-size=900,700",
                    f"--screenshot={shot}", (html_only / "r.html").as_uri()],
                   check=True, capture_output=True, timeout=90)
    import matplotlib.image
    pixels = matplotlib.image.imread(shot)[..., :3]
    # viridis colours of the embedded maps are on the page (a missing image would leave it white and black)
    colourful = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.3
    assert colourful.mean() > 0.02


def test_demo_icpms_verdict_names_the_winner_against_caem_mt(monkeypatch, tmp_path):
    from speclearn import demo
    from speclearn.quantify import benchmark

    def entry(label, error, pnr=None):
        return {"label": label, "mean_relative_error": error, "median_relative_error": error / 2, "pnr_db": pnr,
                "peak_centre_error_da": None, "ms_per_spectrum": 1.0, "training_seconds": 2.0}
    fake = {"results": {"caemmt": entry("CAEM-MT (physics)", 0.103, 20.0), "wnnls": entry("WNNLS physics inversion", 0.063),
                        "pls": entry("PLS", 0.2), "noise floor": entry("Noise floor", 0.01)},
            "paired_t_tests_vs_default": {"wnnls": {"p": 0.001}}, "n_items_above_loq": 100, "default": "caemmt"}
    monkeypatch.setattr(benchmark, "run_setting", lambda *args, **kwargs: fake)
    section = demo.icpms_quantification_section(tmp_path, 0)
    assert section.verdict.startswith("WNNLS physics inversion beats CAEM-MT (physics): 6.3% vs 10.3% mean "
                                      "relative error (39 % lower)")
    assert "noise floor" in section.verdict and "peak-centre error (Da)" not in section.table.columns
