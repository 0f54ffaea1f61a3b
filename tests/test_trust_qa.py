"""QA flags over a run: injected faults vs a clean run, control charts, the `speclearn qa` CLI."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclearn.io import read_table_csv, write_spectra, write_table_csv
from speclearn.simulate.icpms import ICPMSConfig, ICPMSInstrument, simulate_icpms
from speclearn.trust.charts import cusum_chart, ewma_chart, first_alarm, shewhart_chart
from speclearn.trust.faults import inject
from speclearn.trust.qa import RunQA

CONFIG = ICPMSConfig(analytes=("Cd", "Pb"), interferents=("Sn",),
                     instrument=ICPMSInstrument(mz_min=100.0, mz_max=215.0, n_channels=800))


@pytest.fixture(scope="module")
def sims():
    return simulate_icpms(80, seed=0, config=CONFIG, workers=1), simulate_icpms(30, seed=1, config=CONFIG, workers=1)


@pytest.fixture(scope="module")
def qa(sims):
    return RunQA(epochs=15, seed=0).fit(sims[0].spectra)


def test_charts_detect_a_shift_and_stay_quiet_in_control():
    rng = np.random.default_rng(0)
    quiet = rng.standard_normal((200, 1))
    shifted = quiet + np.where(np.arange(200) >= 100, 1.5, 0.0)[:, None]
    for chart in (ewma_chart, cusum_chart):
        assert (chart(quiet)[:, 0] > 1).mean() < 0.05
        alarm = first_alarm(chart(shifted)[:, 0], start=100)
        assert alarm is not None and alarm < 115  # a 1.5 sd step is found within 15 points
    assert np.allclose(shewhart_chart(np.array([[3.0], [-6.0]]))[:, 0], [1.0, 2.0])


def test_sensitivity_drop_scales_the_counts(sims):
    run = sims[1]
    faulty = inject(run, "sensitivity_drop", start=10, size=0.5, seed=0)
    ratio = faulty.simulation.spectra.values()[10:].sum() / run.spectra.values()[10:].sum()
    assert abs(ratio - 0.5) < 0.01 and faulty.labels[10:].all() and not faulty.labels[:10].any()


def test_qa_flags_spike_and_internal_standard_drop_not_clean_run(sims, qa):
    run = sims[1]
    clean = qa.predict(run.spectra)
    spike = inject(run, "spike", start=12, size=3000, width=2, seed=1)
    spiked = qa.predict(spike.simulation.spectra)
    assert spiked["spike"].iloc[12] > 1 and "spike at" in spiked["reasons"].iloc[12]
    assert spiked["anomaly_score"].iloc[12] > clean["anomaly_score"].max()
    drop = run.clean.astype(float).copy()  # internal standard (In) lost in one sample: its peaks removed
    window = (run.spectra.axis > 112.5) & (run.spectra.axis < 115.6)
    drop[20, window] *= 0.3
    from speclearn.trust.faults import redraw
    noisy = run.spectra.values().copy()
    noisy[20] = redraw(drop[20:21], CONFIG, np.random.default_rng(0))[0]
    dropped = qa.predict(run.spectra.with_intensity(noisy))
    assert dropped["is_recovery"].iloc[20] > 1 and "internal-standard recovery" in dropped["reasons"].iloc[20]
    assert (clean["flagged"]).mean() <= 0.1


def test_qa_model_round_trips(sims, qa):
    from speclearn.trust.qa import RunQA as Loaded
    restored = Loaded.from_saved(qa.to_saved())
    a, b = qa.predict(sims[1].spectra), restored.predict(sims[1].spectra)
    np.testing.assert_allclose(a["anomaly_score"], b["anomaly_score"], rtol=1e-5)


# --- CLI -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(sims, tmp_path_factory):
    folder = tmp_path_factory.mktemp("qa_cli")
    write_spectra(sims[0].spectra, folder / "reference.csv")
    run = inject(sims[1], "spike", start=5, size=3000, width=2, seed=2).simulation.spectra
    write_spectra(run, folder / "run.csv")
    write_spectra(run.select(run.ids[:1]), folder / "one.csv")
    ids = list(run.ids)
    write_table_csv(pd.DataFrame({"time": np.arange(len(ids)) * 60.0}, index=pd.Index(ids[::-1], name="id")),
                    folder / "meta.csv")
    times = np.arange(len(ids)) * 60.0
    times[3] = 500.0
    write_table_csv(pd.DataFrame({"time": times}, index=pd.Index(ids, name="id")), folder / "bad_meta.csv")
    return folder


@pytest.fixture(scope="module")
def qa_model(files):
    """The QA model trained once per module (each test that needs it asks for it, so test order is free)."""
    from speclearn.cli.main import main
    assert main(["qa", "train", "--spectra", str(files / "reference.csv"), "--out", str(files / "qa"),
                 "--epochs", "5"]) == 0
    return files / "qa"


def test_cli_qa_train_and_flag(cli, files, qa_model):
    code, _, err = cli("qa", "predict", "--model", files / "qa", "--spectra", files / "run.csv", "--out", files / "flags.csv",
                       "--metadata", files / "meta.csv")
    assert code == 0, err
    flags = read_table_csv(files / "flags.csv")
    assert (files / "flags.drift.png").stat().st_size > 1000
    assert list(flags.index) == list(flags.sort_values("time").index)  # run order from the time column
    assert flags.index[0] == "s29" and flags.loc["s05", "flagged"] and "spike" in flags.loc["s05", "reasons"]
    code, _, err = cli("qa", "predict", "--model", files / "qa", "--spectra", files / "run.csv", "--out", files / "flags.csv")
    assert code == 2 and "exists" in err


def test_cli_qa_bad_inputs(cli, files, qa_model):
    code, _, err = cli("qa", "predict", "--model", files / "qa", "--spectra", files / "one.csv", "--out", files / "f1.csv")
    assert code == 2 and "at least 2 spectra" in err
    code, _, err = cli("qa", "predict", "--model", files / "qa", "--spectra", files / "run.csv", "--out", files / "f2.csv",
                       "--metadata", files / "bad_meta.csv")
    assert code == 2 and "not strictly increasing" in err and "row 5" in err
    assert not (files / "f2.csv").exists()
    code, _, err = cli("qa", "predict", "--spectra", files / "run.csv", "--out", files / "f3.csv")
    assert code == 2 and "--model" in err
