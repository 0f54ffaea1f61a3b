"""Safe by construction: hostile model folders run nothing, --overwrite never destroys user data,
bad input is one line naming the file. Each test would fail on the code before these rules."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speclearn.core.errors import InputError
from speclearn.io import write_spectra, write_table_csv
from speclearn.models.persistence import SavedModel, load_model, save_model
from speclearn.reliability import all_cases, digest, rehash, run_suite, write_hostile_skops

MARKER = "__SPECLEARN_PWNED__"
PAYLOADS = {
    "exec": ("builtins", "exec", ["open('{m}', 'w')"]),
    "eval": ("builtins", "eval", ["open('{m}', 'w')"]),
    "open": ("builtins", "open", ["{m}", "w"]),
    "numpy.load": ("numpy", "load", ["{m}", "r", "True"]),
}


@pytest.fixture
def data(tmp_path, spectra) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    write_spectra(spectra, folder / "spectra.csv")
    write_table_csv(pd.DataFrame({"fat": np.linspace(1, 5, spectra.n_spectra)}, index=spectra.meta.index),
                    folder / "targets.csv")
    write_table_csv(pd.DataFrame({"label": ["a", "b", "c"] * 4}, index=spectra.meta.index), folder / "labels.csv")
    (folder / "notes.txt").write_text("my lab notes")
    return folder


@pytest.fixture
def models(cli, data, tmp_path) -> dict[str, Path]:
    out = {"quantify": tmp_path / "q", "classify": tmp_path / "c"}
    assert cli("quantify", "train", "--spectra", data / "spectra.csv", "--targets", data / "targets.csv",
               "--method", "pls", "--out", out["quantify"])[0] == 0
    assert cli("classify", "train", "--spectra", data / "spectra.csv", "--targets", data / "labels.csv",
               "--method", "plsda", "--out", out["classify"])[0] == 0
    return out


# --- 1. nothing runs from a model folder -----------------------------------------------------------
def test_the_payload_is_real_for_a_prefix_trusting_loader(tmp_path, monkeypatch):
    import skops.io as sio
    monkeypatch.chdir(tmp_path)
    write_hostile_skops(tmp_path / "e.skops", "builtins", "exec", [f"open('{MARKER}', 'w')"])
    sio.load(tmp_path / "e.skops", trusted=["builtins.exec"])  # what the old loader allowed
    assert (tmp_path / MARKER).exists()


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("kind", ["quantify", "classify"])
def test_hostile_estimator_is_refused_before_anything_runs(cli, models, data, tmp_path, monkeypatch, payload, kind):
    monkeypatch.chdir(tmp_path)
    module, name, args = PAYLOADS[payload]
    folder = models[kind]
    for path in folder.glob("*.skops"):
        write_hostile_skops(path, module, name, [a.format(m=MARKER) for a in args])
    rehash(folder)
    code, _, err = cli(kind, "predict", "--model", folder, "--spectra", data / "spectra.csv", "--out",
                       tmp_path / "p.csv")
    assert code == 2 and f"{module}.{name}" in err and "allow-list" in err and len(err.splitlines()) == 1
    assert not (tmp_path / MARKER).exists() and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("entry", ["../../elsewhere/x", "/etc/passwd", "sub/../../x"])
def test_estimator_paths_stay_inside_the_model(tmp_path, spectra, entry):
    save_model(SavedModel("x", {}, spectra.axis_spec()), tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["estimators"] = [entry]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="not a plain file name"):
        load_model(tmp_path / "m")


def test_symlinked_estimator_is_refused(tmp_path, spectra):
    from sklearn.cross_decomposition import PLSRegression
    save_model(SavedModel("x", {}, spectra.axis_spec(), estimators={"e": PLSRegression(1)}), tmp_path / "m")
    outside = tmp_path / "outside.skops"
    (tmp_path / "m" / "e.skops").rename(outside)
    (tmp_path / "m" / "e.skops").symlink_to(outside)
    with pytest.raises(InputError, match="link or lies outside"):
        load_model(tmp_path / "m")


def test_modified_files_are_refused(tmp_path, spectra):
    save_model(SavedModel("x", {}, spectra.axis_spec(), arrays={"w": np.ones(3)}), tmp_path / "m")
    assert load_model(tmp_path / "m").arrays["w"].sum() == 3
    from safetensors.numpy import save_file
    save_file({"w": np.full(3, np.nan)}, str(tmp_path / "m" / "weights.safetensors"))
    with pytest.raises(InputError, match="modified model"):
        load_model(tmp_path / "m")


def test_allow_list_is_exact_not_a_prefix(tmp_path, spectra):
    import skops.io as sio
    from sklearn.cross_decomposition import PLSRegression
    save_model(SavedModel("x", {}, spectra.axis_spec(), estimators={"e": PLSRegression(1)}), tmp_path / "m")
    sio.dump({"f": np.sum}, tmp_path / "m" / "e.skops")  # a numpy function: harmless here, but not listed
    rehash(tmp_path / "m")
    with pytest.raises(InputError, match="refusing to load type numpy.sum"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("params"), "'params' is missing"),
    (lambda c: c.update(params=[1]), "'params' is missing or not a dict"),
    (lambda c: c["params"].update(bogus=1), "unknown parameter 'bogus'"),
    (lambda c: c.update(format_version=7), "model format 7"),
    (lambda c: c["axis"].update(values="abc"), "'axis' needs"),
    (lambda c: c["axis"].pop("values"), "records no spectral axis"),
])
def test_hostile_config_is_one_line(cli, models, data, tmp_path, change, message):
    path = models["quantify"] / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))
    code, _, err = cli("quantify", "predict", "--model", models["quantify"], "--spectra", data / "spectra.csv",
                       "--out", tmp_path / "p.csv")
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


# --- 2. --overwrite never destroys a user's data ---------------------------------------------------
@pytest.mark.parametrize("command", ["quantify", "denoise"])
@pytest.mark.parametrize("where", ["data", "parent"])
def test_training_over_a_folder_of_user_data_is_refused(cli, data, tmp_path, command, where):
    out = data if where == "data" else tmp_path
    before = digest(data)
    extra = ["--targets", data / "targets.csv", "--method", "pls"] if command == "quantify" else ["--method", "classical"]
    code, _, err = cli(command, "train", "--spectra", data / "spectra.csv", *extra, "--out", out, "--overwrite")
    assert code == 2 and len(err.splitlines()) == 1
    assert digest(data) == before


@pytest.mark.parametrize("kind, target", [("quantify", "config.json"), ("classify", "estimator.skops")])
def test_predicting_into_the_model_in_use_is_refused(cli, models, data, tmp_path, kind, target):
    before = digest(models[kind])
    assert (models[kind] / target).exists()
    code, _, err = cli(kind, "predict", "--model", models[kind], "--spectra", data / "spectra.csv",
                       "--out", models[kind] / target, "--overwrite")
    assert code == 2 and "inside the input folder" in err
    assert digest(models[kind]) == before


def test_out_dot_is_one_line(cli, data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("quantify", "train", "--spectra", data / "spectra.csv", "--targets", data / "targets.csv",
                       "--method", "pls", "--out", ".", "--overwrite")
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


def test_existing_sidecar_needs_overwrite(cli, data, tmp_path):
    (tmp_path / "out.csv.axis.json").write_text("mine")
    code, _, err = cli("preprocess", "--spectra", data / "spectra.csv", "--normalize", "snv", "--out", tmp_path / "out.csv")
    assert code == 2 and "out.csv.axis.json" in err and (tmp_path / "out.csv.axis.json").read_text() == "mine"
    assert not (tmp_path / "out.csv").exists()


def test_overwrite_replaces_only_the_same_kind_of_speclearn_output(cli, models, data, tmp_path):
    args = ["quantify", "train", "--spectra", data / "spectra.csv", "--targets", data / "targets.csv", "--method", "pls"]
    assert cli(*args, "--out", models["quantify"], "--overwrite")[0] == 0  # a model over a model: fine
    code, _, err = cli("simulate", "icpms", "--n", 3, "--out", models["quantify"], "--overwrite")
    assert code == 2 and "not a simulation" in err and (models["quantify"] / "config.json").exists()


def test_concurrent_overwrites_all_succeed_and_leave_nothing_behind(tmp_path, spectra):
    errors = []

    def save(i: int) -> None:
        try:
            for _ in range(5):
                save_model(SavedModel("x", {"i": i}, spectra.axis_spec(), arrays={"w": np.full(1000, i)}),
                           tmp_path / "m", overwrite=True)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert load_model(tmp_path / "m").params["i"] in range(4)


def test_leftovers_of_a_killed_save_are_removed(tmp_path, spectra):
    dead = tmp_path / ".m.tmp-999999999-abc"  # no such pid
    dead.mkdir()
    (dead / "config.json").write_text("{half")
    save_model(SavedModel("x", {}, spectra.axis_spec()), tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_outputs_respect_the_umask(tmp_path, spectra):
    old = os.umask(0o022)
    try:
        save_model(SavedModel("x", {}, spectra.axis_spec(), arrays={"w": np.ones(2)}), tmp_path / "m")
        write_spectra(spectra, tmp_path / "s.csv")
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "m" / "weights.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "s.csv").stat().st_mode & 0o777 == 0o644


def test_bench_needs_overwrite_for_a_folder_with_files(cli, tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "simulate_speed.json").write_text("committed")
    code, _, err = cli("bench", "simulate", "--out", tmp_path / "results")
    assert code == 2 and "--overwrite" in err
    assert (tmp_path / "results" / "simulate_speed.json").read_text() == "committed"


# --- 3.-6. inputs: budgets, silent bad outputs, axis kinds, clear errors ------------------------------
def test_tiny_zarr_declaring_a_huge_cube_is_refused_fast(cli, tmp_path):
    import time
    import zarr
    group = zarr.open_group(str(tmp_path / "big.zarr"), mode="w")
    array = group.create_array("intensity", shape=(100_000, 100_000, 1000), chunks=(100, 100, 1000), dtype="f4",
                               dimension_names=["y", "x", "channel"])
    array.attrs["_ARRAY_DIMENSIONS"] = ["y", "x", "channel"]
    start = time.perf_counter()
    code, _, err = cli("inspect", tmp_path / "big.zarr")
    assert code == 2 and "at most" in err and time.perf_counter() - start < 20


def test_wide_csv_is_refused_from_its_header(cli, models, tmp_path):
    n = 50_000
    (tmp_path / "wide.csv").write_text("id," + ",".join(map(str, range(n))) + "\n" + "a," + ",".join(["1"] * n) + "\n")
    code, _, err = cli("quantify", "predict", "--model", models["quantify"], "--spectra", tmp_path / "wide.csv",
                       "--out", tmp_path / "p.csv")
    assert code == 2 and "header" in err and f"{n} channels" in err


def test_a_huge_cell_is_not_echoed(tmp_path, spectra):
    from speclearn.io import read_spectra
    write_spectra(spectra, tmp_path / "s.csv")
    text = (tmp_path / "s.csv").read_text().replace("s03,", "s03," + "x" * 1_000_000, 1)
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises(InputError) as err:
        read_spectra(tmp_path / "s.csv")
    assert len(str(err.value)) < 400 and "chars" in str(err.value)


@pytest.mark.parametrize("content, message", [
    (np.full((3, 4), 1e308), "beyond"),
    (np.array([[1.0, np.nan, 1, 1]] * 3), "NaN value at spectrum 1, channel 2"),
    (np.ones((3, 4)) + 1j, "complex values"),
    (np.array([["a", "b"]] * 3), "not numbers"),
])
def test_arrays_that_cannot_be_spectra(cli, tmp_path, content, message):
    np.save(tmp_path / "x.npy", content)
    code, _, err = cli("preprocess", "--spectra", tmp_path / "x.npy", "--normalize", "snv", "--out", tmp_path / "o.npy")
    assert code == 2 and message in err and "x.npy" in err and not (tmp_path / "o.npy").exists()


def test_missing_zarr_chunk_is_refused_not_read_as_nan(cli, tmp_path, spectra):
    write_spectra(spectra, tmp_path / "s.zarr")
    chunk = next(p for p in sorted((tmp_path / "s.zarr" / "intensity").rglob("*"))
                 if p.is_file() and p.name not in ("zarr.json", ".zarray", ".zattrs"))
    chunk.unlink()
    code, _, err = cli("preprocess", "--spectra", tmp_path / "s.zarr", "--normalize", "snv", "--out", tmp_path / "o.csv")
    assert code == 2 and "NaN" in err and "s.zarr" in err


def test_huge_targets_are_refused(cli, data, tmp_path):
    frame = pd.read_csv(data / "targets.csv")
    frame.loc[2, "fat"] = 1e308
    frame.to_csv(data / "targets.csv", index=False)
    code, _, err = cli("quantify", "train", "--spectra", data / "spectra.csv", "--targets", data / "targets.csv",
                       "--method", "pls", "--out", tmp_path / "m")
    assert code == 2 and "too large" in err


def test_counting_method_refuses_negative_spectra(tmp_path):
    from speclearn.quantify.wnnls import WNNLS
    from speclearn.simulate.icpms import simulate_icpms
    sim = simulate_icpms(8, seed=0)
    negative = sim.spectra.with_intensity(-sim.spectra.values())
    with pytest.raises(InputError, match="detector counts"):
        WNNLS().fit(negative, sim.targets)


def test_axis_kind_and_unit_are_checked(cli, models, data, tmp_path):
    (data / "spectra.csv.axis.json").write_text(json.dumps({"kind": "mz", "unit": "m/z"}))
    code, _, err = cli("quantify", "predict", "--model", models["quantify"], "--spectra", data / "spectra.csv",
                       "--out", tmp_path / "p.csv")
    assert code == 2 and "axis is mz" in err and "wavelength" in err


@pytest.mark.parametrize("text, message", [
    ("id;1;2\na;1,5;2\n".encode(), "semicolon-delimited"),
    ("id,1,2\nm\u00e9lange,1,2\n".encode("latin-1"), "not UTF-8"),
    (b"id,1,2\na,1,\"1,5\"\n", "decimal comma"),
])
def test_european_and_latin1_csv_are_named(cli, tmp_path, text, message):
    (tmp_path / "x.csv").write_bytes(text)
    code, _, err = cli("inspect", tmp_path / "x.csv")
    assert code == 2 and message in err and "x.csv" in err and len(err.splitlines()) == 1


def test_library_warnings_become_one_speclearn_line(cli, data, tmp_path, monkeypatch):
    import warnings
    from speclearn.preprocessing.normalization import Normalizer
    original = Normalizer._transform_rows

    def noisy(self, X):
        for _ in range(3):
            warnings.warn("almost all baseline points are below the data,\n indicating a low tol", UserWarning)
        return original(self, X)

    monkeypatch.setattr(Normalizer, "_transform_rows", noisy)
    code, _, err = cli("preprocess", "--spectra", data / "spectra.csv", "--normalize", "snv", "--out", tmp_path / "o.csv")
    lines = [line for line in err.splitlines() if "below the data" in line or "low tol" in line]
    assert code == 0 and lines == ["speclearn: warning: almost all baseline points are below the data, indicating a low tol"]


# --- the reliability suite (a sample; `speclearn bench reliability` runs all of it) -----------------------
def test_reliability_suite_covers_800_cases_and_a_sample_holds(tmp_path):
    cases = all_cases()
    assert len(cases) >= 800
    outcomes = run_suite(cases[::9], workdir=tmp_path)
    failed = [f"{o.case.command} / {o.case.slot} / {o.case.corruption}: {o.problem}" for o in outcomes if not o.held]
    assert not failed, failed


SHIPPED = {
    "gamma identifier": Path(__file__).parents[1] / "src/speclearn/gamma/default_model",
    "mrs aligner": Path(__file__).parents[1] / "src/speclearn/mrs/data/models/aligner",
    "mrs detector": Path(__file__).parents[1] / "src/speclearn/mrs/data/models/detector",
}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_load_and_a_planted_payload_is_refused(tmp_path, monkeypatch, name):
    import shutil
    assert load_model(SHIPPED[name]).arrays  # format 2, checksums match
    folder = tmp_path / "copy"
    shutil.copytree(SHIPPED[name], folder)
    config = json.loads((folder / "config.json").read_text())
    config["estimators"].append("estimator")
    config["files"]["estimator.skops"] = ""
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    write_hostile_skops(folder / "estimator.skops", "builtins", "exec", [f"open('{MARKER}', 'w')"])
    rehash(folder)
    with pytest.raises(InputError, match="builtins.exec"):
        load_model(folder)
    assert not (tmp_path / MARKER).exists()


def test_gamma_identify_refuses_a_hostile_model(cli, tmp_path, monkeypatch):
    import shutil
    folder = tmp_path / "identifier"
    shutil.copytree(SHIPPED["gamma identifier"], folder)
    (folder / "weights.safetensors").write_bytes(b"\x08\0\0\0\0\0\0\0{}      ")
    monkeypatch.chdir(tmp_path)
    spectrum = Path(__file__).parent / "data" / "gamma" / "nai_detector.spe"
    code, _, err = cli("gamma", "identify", "--spectra", spectrum, "--model", folder, "--out", tmp_path / "ids.csv")
    assert code == 2 and "modified model" in err and not (tmp_path / "ids.csv").exists()
