"""Where users already are: HyperSpy/exspy signals and xarray DataArrays in and out.

- `from_hyperspy(signal)` / `to_hyperspy(spectra)`: axes (name, units, offset, scale), metadata
  (beam energy, elements, the whole HyperSpy tree) and laziness (dask) survive both ways.
- `decomposition(signal, method="psnmf", n_components=K)`: speclearn's unmixers on the spectrum
  image as it is (PSNMF bins neighbouring pixels, so it needs the map, not HyperSpy's unfolded
  pixel list); fills `signal.learning_results` like `signal.decomposition()` and returns the
  abundance maps and component spectra as signals (EDS spectra exspy can quantify).
- `PixelUnmixer`: the pixel-wise unmixers (NMF, PCA-NMF) as an estimator that HyperSpy's own
  `signal.decomposition(algorithm=PixelUnmixer("nmf", 3))` accepts.
- `from_xarray(da)` / `to_xarray(spectra)`: any spectral dimension name (`energy`, `wavenumber`,
  ...), dask-backed arrays stay lazy.

File-level metadata travels in `Spectra.attrs` (a dict, `meta.attrs`): `beam_energy_kv`, `elements`,
`signal_type`, `title`, `axis_name`, `navigation_axes` and `hyperspy_metadata` (the full tree).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import AXIS_KINDS, PixelIds, Spectra, default_ids, is_dask
from speclearn.io.external import axis_kind

def beam_energy_kv(tree: dict) -> float | None:
    """`Acquisition_instrument.{SEM,TEM}.beam_energy` of a HyperSpy metadata dictionary (kV)."""
    for microscope in ("TEM", "SEM"):
        value = tree.get("Acquisition_instrument", {}).get(microscope, {}).get("beam_energy")
        if value is not None:
            return float(value)
    return None


def file_attrs(tree: dict, navigation: list[dict], axis_name: str = "") -> dict:
    """The file-level attributes speclearn keeps from a HyperSpy/RosettaSciIO metadata tree."""
    attrs: dict[str, Any] = {"hyperspy_metadata": tree, "navigation_axes": navigation, "axis_name": axis_name}
    energy = beam_energy_kv(tree)
    if energy is not None:
        attrs["beam_energy_kv"] = energy
    elements = tree.get("Sample", {}).get("elements")
    if elements is not None and len(elements):
        attrs["elements"] = [str(e) for e in elements]
    signal_type = tree.get("Signal", {}).get("signal_type")
    if signal_type:
        attrs["signal_type"] = str(signal_type)
    title = tree.get("General", {}).get("title")
    if title:
        attrs["title"] = str(title)
    return attrs


def _axis_dict(axis: Any) -> dict:
    """A HyperSpy axis as a plain dictionary (uniform: offset/scale; otherwise the values)."""
    out = {"name": str(axis.name) if isinstance(axis.name, str) else "", "units": str(axis.units)
           if isinstance(axis.units, str) else "", "size": int(axis.size)}
    if getattr(axis, "is_uniform", True):
        out.update(offset=float(axis.offset), scale=float(axis.scale))
    else:
        out["values"] = np.asarray(axis.axis, dtype=float).tolist()
    return out


def _axis_values(axis: dict) -> np.ndarray:
    if "values" in axis:
        return np.asarray(axis["values"], dtype=float)
    return axis.get("offset", 0.0) + axis.get("scale", 1.0) * np.arange(axis["size"])


# --- HyperSpy --------------------------------------------------------------------------------
def from_hyperspy(signal: Any) -> Spectra:
    """Spectra from a HyperSpy Signal1D (or EDS/EELS spectrum): 0-2 navigation dimensions.

    The data is used as it is: a lazy signal gives a lazy (dask) Spectra, the dtype is kept.
    """
    axes = signal.axes_manager
    if axes.signal_dimension != 1:
        raise InputError(f"expected a 1-D signal (spectra), got signal dimension {axes.signal_dimension}; "
                         "use signal.as_signal1D(...) first")
    if axes.navigation_dimension > 2:
        raise InputError(f"{axes.navigation_dimension} navigation dimensions; speclearn takes a spectrum set "
                         "or a spectrum image (at most 2)")
    spectral = _axis_dict(axes.signal_axes[0])
    navigation = [_axis_dict(a) for a in reversed(axes.navigation_axes)]  # array order: (y, x)
    data = signal.data
    if data.ndim == 1:
        data = data[None, :]
    tree = signal.metadata.as_dictionary()
    meta = PixelIds() if data.ndim == 3 else pd.DataFrame(index=default_ids(data.shape[:-1]))
    meta.attrs.update(file_attrs(tree, navigation, spectral["name"]))
    return Spectra(data, _axis_values(spectral), axis_kind=axis_kind(spectral["units"], spectral["name"]),
                   axis_unit=spectral["units"], meta=meta,
                   source=tree.get("General", {}).get("original_filename") or None)


def to_hyperspy(spectra: Spectra, *, signal_type: str | None = None, title: str | None = None) -> Any:
    """A HyperSpy signal of `spectra` (lazy when they are), with axes and metadata restored.

    The signal type comes from `signal_type`, else the metadata (e.g. "EDS_TEM": an exspy EDS
    spectrum when exspy is installed), else plain Signal1D.
    """
    import hyperspy.api as hs
    attrs = spectra.attrs
    data = spectra.intensity
    navigation = list(attrs.get("navigation_axes", []))
    if not spectra.is_image and len(navigation) == 0 and data.shape[0] == 1:
        data = data[0]
    elif len(navigation) != data.ndim - 1 or any(a["size"] != n for a, n in zip(navigation, data.shape)):
        names = ["y", "x"] if spectra.is_image else ["spectrum"]
        navigation = [{"name": name, "units": "", "size": int(n), "offset": 0.0, "scale": 1.0}
                      for name, n in zip(names, data.shape[:-1])]
    spectral = {"name": attrs.get("axis_name") or spectra.axis_kind, "units": spectra.axis_unit,
                "size": spectra.n_channels, "navigate": False}
    step = np.diff(spectra.axis)
    if step.size == 0 or np.allclose(step, step[0], rtol=1e-9, atol=0):
        spectral.update(offset=float(spectra.axis[0]), scale=float(step[0]) if step.size else 1.0)
    else:
        spectral["axis"] = spectra.axis
    axes = [{**{k: v for k, v in a.items() if k != "values"}, "navigate": True,
             **({"axis": np.asarray(a["values"])} if "values" in a else {})} for a in navigation] + [spectral]
    cls = hs.signals.LazySignal1D if is_dask(data) else hs.signals.Signal1D
    signal = cls(data, axes=axes)
    tree = attrs.get("hyperspy_metadata")
    if tree:
        signal.metadata.add_dictionary({k: v for k, v in tree.items() if k != "_HyperSpy"})
    if title is not None:
        signal.metadata.General.title = title
    kind = signal_type if signal_type is not None else attrs.get("signal_type")
    if kind:
        _set_signal_type(signal, kind)
    return signal


def _set_signal_type(signal: Any, kind: str) -> None:
    """Set the signal type; falls back to a plain signal when its extension (e.g. exspy) is missing."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            signal.set_signal_type(kind)
        except Exception:  # noqa: BLE001 - unknown type without its extension: keep Signal1D
            signal.metadata.set_item("Signal.signal_type", kind)


# --- decomposition -------------------------------------------------------------------------------
def _unmixer(method: str, n_components: int, params: dict) -> Any:
    from speclearn.unmix import METHODS
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose {', '.join(METHODS)}")
    return METHODS[method](n_components, **params)


def decomposition(signal: Any, method: str = "psnmf", n_components: int = 3, **params: Any) -> tuple[Any, Any]:
    """Unmix a HyperSpy spectrum image with speclearn; returns (abundance maps, component spectra).

    Fills `signal.learning_results` as HyperSpy's decomposition does: `factors` (channels, K) the
    component spectra (unit area), `loadings` (pixels, K) the counts each component explains, so
    `signal.get_decomposition_model()` reconstructs the map. The maps hold fractions of the counts
    per pixel (sum to one; `sum_to_one=False` gives counts); the spectra keep the signal's type and
    metadata and hold the counts each component contributes to the whole map (an exspy EDS signal
    can be quantified: `add_lines()`, `get_lines_intensity()`, `quantification(..., factors=k)`).
    `params` go to the estimator (`speclearn.unmix.PSNMF`, `NMF` or `PCANMF`).
    """
    spectra = from_hyperspy(signal)
    if not spectra.is_image:
        raise InputError(f"decomposition needs a spectrum image (2 navigation dimensions), got shape "
                         f"{tuple(spectra.intensity.shape)}")
    estimator = _unmixer(method, n_components, params).fit(spectra)
    ny, nx, _ = spectra.intensity.shape
    results = signal.learning_results
    results.factors = np.asarray(estimator.components_.T, dtype=float)
    results.loadings = np.asarray(estimator.counts_, dtype=float).reshape(n_components, -1).T
    results.decomposition_algorithm = f"speclearn.{type(estimator).__name__}"
    results.output_dimension = n_components
    results.poissonian_noise_normalized = False
    results.unfolded = False
    results.centre = None
    results.mean = None
    results.explained_variance = results.explained_variance_ratio = None
    results.unmixing_matrix = results.bss_algorithm = None
    signal.estimator_ = estimator  # type: ignore[attr-defined]
    name = type(estimator).__name__
    tree = {k: v for k, v in signal.metadata.as_dictionary().items() if k not in ("General", "Signal", "_HyperSpy")}
    import hyperspy.api as hs
    maps = hs.signals.Signal2D(**signal.get_decomposition_loadings()._to_dictionary())
    maps.data = np.asarray(estimator.abundances_, dtype=float).reshape(n_components, ny, nx)
    maps.metadata.General.title = f"{name} abundance maps ({'fraction of counts' if estimator.sum_to_one else 'counts'})"
    components = signal.get_decomposition_factors()
    components.data = components.data * results.loadings.sum(axis=0)[:, None]
    components.metadata.add_dictionary(tree)
    components.metadata.General.title = f"{name} component spectra (counts summed over the map)"
    return maps, components


class PixelUnmixer(BaseEstimator):
    """A pixel-wise speclearn unmixer (method "nmf" or "pca-nmf") on (pixels, channels) input:
    the estimator HyperSpy's `signal.decomposition(algorithm=PixelUnmixer("nmf", 3))` calls.

    `fit_transform` returns the counts per component (pixels, K); `components_` (K, channels) are
    the spectra of unit area. PSNMF bins neighbouring pixels, so it is refused here: use
    `speclearn.interop.decomposition` for it.
    """

    def __init__(self, method: str = "nmf", n_components: int = 3, *, loss: str = "kullback-leibler",
                 max_iter: int = 1000, random_state: int | None = 0):
        store_params(self, locals())

    def _estimator(self) -> Any:
        if self.method == "psnmf":
            raise InputError("PSNMF needs the spatial layout; use speclearn.interop.decomposition(signal, 'psnmf')")
        return _unmixer(self.method, self.n_components, {"loss": self.loss, "max_iter": self.max_iter,
                                                         "random_state": self.random_state, "sum_to_one": False})

    @staticmethod
    def _cube(data: Any) -> Any:
        data = data if is_dask(data) else np.asarray(data)
        if data.ndim != 2:
            raise InputError(f"expected (pixels, channels), got shape {tuple(data.shape)}")
        return data[:, None, :]

    def fit_transform(self, data: Any, y: None = None) -> np.ndarray:
        estimator = self._estimator().fit(self._cube(data))
        self.estimator_ = estimator
        self.components_ = estimator.components_
        return estimator.counts_[:, :, 0].T

    def fit(self, data: Any, y: None = None) -> "PixelUnmixer":
        self.fit_transform(data)
        return self

    def transform(self, data: Any) -> np.ndarray:
        """Counts per component (pixels, K) of new pixels with the fitted spectra fixed."""
        return self.estimator_.transform(self._cube(data))[:, :, 0].T


# --- xarray --------------------------------------------------------------------------------------
def from_xarray(array: Any, *, spectral_dim: str | None = None, source: str = "<xarray>") -> Spectra:
    """Spectra from an xarray DataArray (or a Dataset in speclearn's layout); dask stays lazy.

    The spectral dimension is `spectral_dim`, else "channel" or a known axis kind (energy,
    wavelength, wavenumber, mz), else the last dimension; its coordinate gives the axis and its
    attrs `units` (and `kind`) the unit and kind. A 2-D array is (spectra, channels), a 3-D one
    (y, x, channels); the coordinate of the first dimension of a 2-D array gives the ids.
    """
    import xarray as xr
    from speclearn.io.arrays import from_dataset
    if isinstance(array, xr.Dataset):
        if "intensity" not in array:
            raise InputError(f"no 'intensity' variable (found {', '.join(map(str, array.data_vars)) or 'none'})",
                             file=source)
        dataset, array = array, array["intensity"]
    else:
        dataset = None
    if array.ndim not in (2, 3):
        raise InputError(f"expected 2 (spectra, channels) or 3 (y, x, channels) dimensions, got {array.dims}",
                         file=source)
    dims = [str(d) for d in array.dims]
    if spectral_dim is None:
        known = [d for d in dims if d == "channel" or d in AXIS_KINDS]
        spectral_dim = known[0] if known else dims[-1]
    if spectral_dim not in dims:
        raise InputError(f"no dimension {spectral_dim!r} (found {', '.join(dims)})", file=source)
    others = [d for d in dims if d != spectral_dim]
    array = array.transpose(*others, spectral_dim)
    coord = array.coords.get(spectral_dim)
    values = np.asarray(coord.values, dtype=float) if coord is not None else np.arange(array.shape[-1], dtype=float)
    attrs = dict(coord.attrs) if coord is not None else {}
    unit = str(attrs.get("units", attrs.get("unit", "")) or "")
    kind = attrs.get("kind") or (spectral_dim if spectral_dim in AXIS_KINDS else axis_kind(unit, spectral_dim))
    names = {spectral_dim: "channel", **dict(zip(others, ["spectrum"] if len(others) == 1 else ["y", "x"]))}
    renamed = array.drop_vars([c for c in array.coords if c not in others]).rename(names)
    ds = renamed.to_dataset(name="intensity")
    ds = ds.assign_coords(channel=xr.Variable("channel", values, attrs={"kind": kind, "units": unit}))
    if len(others) == 1:
        if others[0] not in array.coords:
            ds = ds.assign_coords(spectrum=[str(i) for i in default_ids((array.shape[0],))])
        if dataset is not None:
            for name in dataset.data_vars:
                if name != "intensity" and dataset[name].dims == (others[0],):
                    ds[name] = ("spectrum", dataset[name].data)
    spectra = from_dataset(ds, source=source)
    spectra.attrs.update({k: v for k, v in array.attrs.items()})
    return spectra


def to_xarray(spectra: Spectra, *, spectral_dim: str | None = None) -> Any:
    """An xarray DataArray of `spectra` (lazy when they are): dims (spectrum, DIM) or (y, x, DIM),
    where DIM is `spectral_dim`, else the axis kind ("energy", "wavenumber", ... or "channel");
    per-spectrum metadata become coordinates on `spectrum`, file-level metadata the attrs."""
    from speclearn.io.arrays import to_dataset
    dim = spectral_dim or spectra.axis_kind
    ds = to_dataset(spectra)
    array = ds["intensity"]
    if not spectra.is_image:
        array = array.assign_coords({str(name): ds[str(name)] for name in spectra.meta.columns})
    array = array.rename({"channel": dim}) if dim != "channel" else array
    array.attrs.update({k: v for k, v in spectra.attrs.items() if isinstance(v, (str, int, float, list))})
    return array


__all__ = ["PixelUnmixer", "axis_kind", "decomposition", "from_hyperspy", "from_xarray", "to_hyperspy",
           "to_xarray"]
