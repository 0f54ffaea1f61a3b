"""`Spectra`: the one container every part of speclearn reads, writes and passes around."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError

#: Known axis kinds and their default units.
AXIS_KINDS: dict[str, str] = {
    "mz": "m/z",
    "wavelength": "nm",
    "wavenumber": "cm-1",
    "energy": "keV",
    "channel": "",
}


def is_dask(array: Any) -> bool:
    """True for a dask array (without importing dask when it is not needed)."""
    return type(array).__module__.startswith("dask")


#: Largest intensity magnitude accepted: squares and sums of larger values overflow float64.
MAX_ABS = 1e100

#: Most spectra (or pixels) one file may hold: ids are kept per spectrum, so this bounds memory.
MAX_SPECTRA = 50_000_000


def check_count(shape: tuple[int, ...], *, source: str | None = None) -> int:
    """The number of spectra (pixels) of an array of `shape`, refused beyond `MAX_SPECTRA`."""
    n = int(np.prod(shape[:-1], dtype=float))
    if n > MAX_SPECTRA:
        raise InputError(f"declares {n:.3g} spectra (shape {tuple(shape)}); speclearn handles at most "
                         f"{MAX_SPECTRA:.0e} per file", file=source)
    return n


def default_ids(shape: tuple[int, ...], *, source: str | None = None, rows: slice = slice(None)) -> pd.Index:
    """The default ids ("s000", "s001", ...) of spectra or pixels (C order) for the leading `shape`; only
    those at the flat positions `rows` when given."""
    n = check_count((*shape, 1), source=source)
    width = len(str(max(n - 1, 0)))
    return pd.Index([f"s{i:0{width}d}" for i in range(n)[rows]], name="id")


@dataclass(frozen=True)
class PixelIds:
    """The metadata of a spectrum image whose ids are its default ones ("s0000", ... in C order), derived
    from the pixel position when asked for: `Spectra(cube, axis, meta=PixelIds(attrs))` keeps file-level
    `attrs` without a string per pixel. A Spectra image given no metadata gets one."""

    attrs: dict = field(default_factory=dict)


class _Meta:
    """`Spectra.meta`. An image's table of default pixel ids (`PixelIds`) is built on first use, so
    streaming a large cube holds no string per pixel (~90 MB per million)."""

    def __get__(self, obj, owner=None):
        if obj is None:
            return None  # the dataclass default
        derived = obj.__dict__.get("_meta")
        if isinstance(derived, PixelIds):
            meta = pd.DataFrame(index=default_ids(obj.intensity.shape[:-1]))
            meta.attrs.update(derived.attrs)
            obj.__dict__["_meta"] = meta
        return obj.__dict__["_meta"]

    def __set__(self, obj, value) -> None:
        obj.__dict__["_meta"] = value


def _where(index: tuple[int, ...]) -> str:
    return f"spectrum {index[0] + 1}" if len(index) == 2 else f"pixel (y={index[0]}, x={index[1]})"


def _check_block(block: np.ndarray, *, source: str | None, offset: tuple[int, ...] = ()) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(block) & (np.abs(block) <= MAX_ABS)
    if not finite.all():
        bad = np.unravel_index(int(np.argmin(finite)), block.shape)
        where = tuple(int(i) + (offset[k] if k < len(offset) else 0) for k, i in enumerate(bad))
        value = block[bad]
        what = "NaN" if np.isnan(value) else "infinite" if np.isinf(value) else \
            f"{value:.3g} (beyond +-{MAX_ABS:.0e}: rescale the data)"
        raise InputError(f"{what} value at {_where(where)}, channel {where[-1] + 1}", file=source)
    return block


def _check_lazy_block(block: np.ndarray, block_info=None, *, source: str | None) -> np.ndarray:
    offset = tuple(start for start, _ in block_info[0]["array-location"]) if block_info else ()
    return _check_block(block, source=source, offset=offset)


def checked_intensity(intensity: Any, *, source: str | None = None) -> Any:
    """Real, finite intensities: complex, text or NaN/inf data are refused (lazily for dask)."""
    kind = intensity.dtype.kind
    if kind == "c":
        raise InputError("complex values; speclearn needs real intensities (MR spectroscopy FIDs: "
                         "use `speclearn mrs`)", file=source)
    if kind not in "iuf":
        raise InputError(f"values of type {intensity.dtype} are not numbers", file=source)
    if kind != "f":
        return intensity
    if is_dask(intensity):
        if getattr(intensity, "_speclearn_checked", False):
            return intensity
        checked = intensity.map_blocks(_check_lazy_block, source=source, dtype=intensity.dtype)
        checked._speclearn_checked = True
        return checked
    return _check_block(intensity, source=source)


def check_axis(axis: np.ndarray, *, file: str | None = None) -> np.ndarray:
    """Return `axis` as float64 after checking it is 1-D, finite and strictly monotonic."""
    axis = np.asarray(axis, dtype=float)
    if axis.ndim != 1 or axis.size == 0:
        raise InputError(f"axis must be a non-empty 1-D array, got shape {axis.shape}", file=file)
    bad = np.flatnonzero(~np.isfinite(axis))
    if bad.size:
        raise InputError(f"axis value is not finite ({axis[bad[0]]})", file=file, column=int(bad[0]) + 1)
    if axis.size > 1:
        step = np.diff(axis)
        same = np.flatnonzero(step == 0)
        if same.size:
            raise InputError(f"axis value {axis[same[0]]:g} is duplicated", file=file,
                             column=int(same[0]) + 2)
        if not (np.all(step > 0) or np.all(step < 0)):
            turn = int(np.flatnonzero(np.sign(step) != np.sign(step[0]))[0])
            raise InputError(f"axis is not monotonic: {axis[turn]:g} is followed by {axis[turn + 1]:g}",
                             file=file, column=turn + 2)
    return axis


def _checked_meta(meta: pd.DataFrame, n: int, *, source: str | None) -> pd.DataFrame:
    """A copy of `meta` with string ids, refused unless it has `n` rows with distinct ids."""
    if len(meta) != n:
        raise InputError(f"metadata has {len(meta)} rows for {n} spectra", file=source)
    meta = meta.copy()
    meta.index = meta.index.astype(str).rename("id")
    if meta.index.has_duplicates:
        dup = meta.index[meta.index.duplicated()][0]
        raise InputError(f"duplicate id {dup!r}", file=source)
    return meta


@dataclass(frozen=True, eq=False)
class Spectra:
    """Spectra on a common axis, with one metadata row per spectrum.

    intensity: (n_spectra, n_channels) or a spectrum image (y, x, n_channels); numpy or dask.
    axis: channel positions (m/z, wavelength, wavenumber, energy ...), strictly monotonic.
    axis_kind, axis_unit: what the axis measures; see `AXIS_KINDS`.
    meta: per-spectrum table indexed by string ids (groups, targets, instrument parameters,
        positions). For an image the rows run over pixels in C order; without one, an image's ids
        ("s0000", ... in C order) are derived from the pixel position when first asked for.
    source: the file the spectra came from, used to name it in error messages.
    """

    intensity: Any
    axis: np.ndarray
    axis_kind: str = "channel"
    axis_unit: str = ""
    meta: pd.DataFrame = _Meta()  # type: ignore[assignment]
    source: str | None = None

    def __post_init__(self) -> None:
        intensity = self.intensity if is_dask(self.intensity) else np.asarray(self.intensity)
        if intensity.ndim not in (2, 3):
            raise InputError("intensity must be 2-D (spectra, channels) or 3-D (y, x, channels), "
                             f"got {intensity.ndim}-D shape {intensity.shape}", file=self.source)
        n = check_count(intensity.shape, source=self.source)
        intensity = checked_intensity(intensity, source=self.source)
        axis = check_axis(self.axis, file=self.source)
        if axis.size != intensity.shape[-1]:
            raise InputError(f"axis has {axis.size} values but the spectra have "
                             f"{intensity.shape[-1]} channels", file=self.source)
        meta = self.__dict__.get("_meta")
        if isinstance(meta, PixelIds) and intensity.ndim == 2:
            raise InputError("PixelIds metadata is for a spectrum image (y, x, channels)", file=self.source)
        if meta is None:
            meta = PixelIds() if intensity.ndim == 3 else \
                pd.DataFrame(index=default_ids(intensity.shape[:-1], source=self.source))
        meta = PixelIds(dict(meta.attrs)) if isinstance(meta, PixelIds) else _checked_meta(meta, n, source=self.source)
        unit = self.axis_unit or AXIS_KINDS.get(self.axis_kind, "")
        object.__setattr__(self, "intensity", intensity)
        object.__setattr__(self, "axis", axis)
        object.__setattr__(self, "axis_unit", unit)
        object.__setattr__(self, "meta", meta)

    # --- shape ---------------------------------------------------------------------------
    @property
    def is_image(self) -> bool:
        return self.intensity.ndim == 3

    @property
    def n_channels(self) -> int:
        return int(self.intensity.shape[-1])

    @property
    def n_spectra(self) -> int:
        return int(np.prod(self.intensity.shape[:-1]))

    @property
    def ids(self) -> list[str]:
        return list(self.meta.index)

    def ids_at(self, rows: slice) -> pd.Index:
        """The ids of the spectra at flat positions `rows` (an image's default ids derived for those only)."""
        if isinstance(self.__dict__["_meta"], PixelIds):
            return default_ids(self.intensity.shape[:-1], rows=rows)
        return self.meta.index[rows]

    @property
    def attrs(self) -> dict:
        """File-level metadata (beam energy, elements, ...; see `speclearn.interop`), `meta.attrs`."""
        return self.__dict__["_meta"].attrs

    @property
    def is_lazy(self) -> bool:
        return is_dask(self.intensity)

    def flat(self) -> Any:
        """Intensities as (n_spectra, n_channels); an image is reshaped, pixels in C order."""
        return self.intensity.reshape(-1, self.n_channels) if self.is_image else self.intensity

    def values(self) -> np.ndarray:
        """(n_spectra, n_channels) as a numpy array (computes a lazy array)."""
        flat = self.flat()
        return np.asarray(flat.compute() if is_dask(flat) else flat)

    # --- derived containers ----------------------------------------------------------------
    def with_intensity(self, intensity: Any, axis: np.ndarray | None = None, *, axis_kind: str | None = None,
                       axis_unit: str | None = None) -> "Spectra":
        """Same spectra (ids, metadata) with new intensities, and a new axis (kind, unit) if given."""
        if self.is_image and intensity.ndim == 2:
            intensity = intensity.reshape(*self.intensity.shape[:2], intensity.shape[-1])
        return self._replace(intensity=intensity, axis=self.axis if axis is None else axis,
                             axis_kind=axis_kind or self.axis_kind,
                             axis_unit=self.axis_unit if axis_unit is None else axis_unit)

    def _replace(self, **changes: Any) -> "Spectra":
        """`dataclasses.replace` that keeps an image's ids derived (replace would build them)."""
        fields = dict(intensity=self.intensity, axis=self.axis, axis_kind=self.axis_kind, axis_unit=self.axis_unit,
                      meta=self.__dict__["_meta"], source=self.source)
        return Spectra(**{**fields, **changes})

    def select(self, ids: list[str] | pd.Index) -> "Spectra":
        """The listed spectra, in that order (a spectrum image becomes a flat set)."""
        position = self.meta.index.get_indexer(pd.Index(ids).astype(str))
        if (position < 0).any():
            missing = pd.Index(ids)[position < 0][0]
            raise InputError(f"id {missing!r} is not among the spectra", file=self.source)
        return replace(self, intensity=self.flat()[position], meta=self.meta.iloc[position])

    def evenly(self, at_most: int) -> "Spectra":
        """At most `at_most` of the spectra, evenly spaced (itself when it has no more)."""
        step = -(-self.n_spectra // at_most)
        return self if step == 1 else self.select(list(self.ids_at(slice(None, None, step))))

    def compute(self) -> "Spectra":
        """A copy held in memory (numpy)."""
        return self if not self.is_lazy else self._replace(intensity=self.intensity.compute())

    def check_trainable(self) -> None:
        """Refuse training data that carry nothing to learn: identical (e.g. constant) spectra, or
        spectra of fewer than 3 channels."""
        if self.n_channels < 3:
            raise InputError(f"spectra of {self.n_channels} channel(s); at least 3 are needed to train",
                             file=self.source)
        flat = self.flat()
        spread = flat.max(axis=0) - flat.min(axis=0)
        if not float(spread.max().compute() if self.is_lazy else spread.max()) > 0:
            raise InputError(f"all {self.n_spectra} training spectra are identical; there is nothing to learn "
                             "from them", file=self.source)

    def describe_axis(self) -> str:
        unit = f" {self.axis_unit}" if self.axis_unit else ""
        return f"{self.axis_kind} {self.axis[0]:g} .. {self.axis[-1]:g}{unit} ({self.n_channels} channels)"

    def axis_spec(self) -> dict[str, Any]:
        """JSON-ready description of the axis, stored with models to refuse other data."""
        return {"kind": self.axis_kind, "unit": self.axis_unit, "values": self.axis.tolist()}

    def check_axis_matches(self, spec: dict[str, Any], *, what: str = "the model") -> None:
        """Raise InputError unless this data has the axis described by `spec` (see `axis_spec`)."""
        if not isinstance(spec.get("values"), list):
            raise InputError(f"{what} records no spectral axis to check these spectra against", file=self.source)
        expected = np.asarray(spec["values"], dtype=float)
        if expected.size != self.n_channels:
            raise InputError(f"{self.n_channels} channels, but {what} was trained on {expected.size} "
                             f"({spec['kind']} {expected[0]:g} .. {expected[-1]:g})", file=self.source)
        tolerance = 1e-6 * max(np.abs(expected).max(), 1.0)
        off = np.flatnonzero(np.abs(expected - self.axis) > tolerance)
        if off.size:
            i = int(off[0])
            raise InputError(f"axis mismatch with {what}: channel {i + 1} is at {self.axis[i]:g}, "
                             f"{what} expects {expected[i]:g}", file=self.source, column=i + 2)
        kind, unit = str(spec.get("kind", "channel")), str(spec.get("unit", ""))
        if "channel" not in (kind, self.axis_kind) and (kind, unit.lower()) != (self.axis_kind, self.axis_unit.lower()):
            raise InputError(f"axis is {self.axis_kind} ({self.axis_unit or 'no unit'}), but {what} was trained "
                             f"on {kind} ({unit or 'no unit'})", file=self.source)
        if kind == "channel" and self.axis_kind == "channel" and np.array_equal(expected, np.arange(expected.size)):
            import warnings
            warnings.warn("spectra and model carry no axis (channel numbers only): only the channel count was "
                          "checked; give the axis in the CSV header or a .axis.json sidecar", UserWarning, stacklevel=2)
