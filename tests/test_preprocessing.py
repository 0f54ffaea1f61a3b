"""The same contract for every transformer (pybaselines-style shared test base), then each one's physics."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

from speclearn.core.errors import InputError
from speclearn.preprocessing import (CHEMCAM_MASKED_BANDS, BandMask, BaselineCorrector, Crop, Normalizer, Resampler,
                                     SavitzkyGolay, ScatterCorrection, StandardScaler, average_by_group, preprocess)

AXIS = np.linspace(200.0, 300.0, 64)


class TransformerContract:
    """Every transformer: input untouched, numpy == dask, clone/get_params, Pipeline, width checks."""

    def make(self):
        raise NotImplementedError

    def test_input_is_left_unchanged(self, spectra):
        X = spectra.values()
        before = X.copy()
        self.make().fit(X).transform(X)
        np.testing.assert_array_equal(X, before)

    def test_dask_matches_numpy_and_stays_lazy(self, spectra):
        X = spectra.values()
        lazy = da.from_array(X, chunks=(5, 64))
        transformer = self.make().fit(X)
        out = transformer.transform(lazy)
        assert isinstance(out, da.Array)
        np.testing.assert_allclose(out.compute(), transformer.transform(X), rtol=1e-10, atol=1e-12)

    def test_fits_on_dask_like_numpy(self, spectra):
        X = spectra.values()
        lazy = self.make().fit(da.from_array(X, chunks=(4, 64)))
        np.testing.assert_allclose(lazy.transform(X), self.make().fit(X).transform(X), rtol=1e-10, atol=1e-12)

    def test_shape_and_axis(self, spectra):
        transformer = self.make().fit(spectra.values())
        out = transformer.transform(spectra.values())
        assert out.shape == (spectra.n_spectra, transformer.output_axis(spectra.axis).size)

    def test_clone_and_pipeline(self, spectra):
        transformer = self.make()
        cloned, original = clone(transformer).get_params(), transformer.get_params()
        assert cloned.keys() == original.keys()
        for name, value in original.items():
            np.testing.assert_equal(cloned[name], value)
        piped = make_pipeline(clone(transformer)).fit_transform(spectra.values())
        np.testing.assert_allclose(piped, self.make().fit_transform(spectra.values()))

    def test_refuses_other_width(self, spectra):
        transformer = self.make().fit(spectra.values())
        with pytest.raises(InputError):
            transformer.transform(spectra.values()[:, :10])


class TestBaselineSnip(TransformerContract):
    def make(self):
        return BaselineCorrector("snip", params={"max_half_window": 10})

    def test_removes_a_sloped_background(self):
        peak = 5 * np.exp(-0.5 * ((AXIS - 250) / 2) ** 2)
        X = (peak + 0.05 * AXIS + 3)[None, :]
        out = self.make().fit_transform(X)
        assert abs(out[0, :5]).max() < 0.3 and out[0].max() > 4.0


class TestBaselineArpls(TransformerContract):
    def make(self):
        return BaselineCorrector("arpls", params={"lam": 1e4})


class TestBaselineAsls(TransformerContract):
    def make(self):
        return BaselineCorrector("asls", params={"lam": 1e4, "p": 0.01})


class TestBaselineRollingMin(TransformerContract):
    def make(self):
        return BaselineCorrector("rolling_min", window=15, sigma=5)

    def test_constant_offset_is_removed(self):
        X = np.full((2, 64), 7.0)
        np.testing.assert_allclose(self.make().fit_transform(X), 0.0, atol=1e-12)


class TestSavitzkyGolay(TransformerContract):
    def make(self):
        return SavitzkyGolay(7, 2)

    def test_keeps_quadratics_and_derivative_of_line(self):
        X = (0.3 * AXIS ** 2)[None, :]
        np.testing.assert_allclose(self.make().fit_transform(X), X, rtol=1e-9)
        slope = SavitzkyGolay(7, 2, deriv=1).fit_transform((4 * np.arange(64.0))[None, :])
        np.testing.assert_allclose(slope, 4.0, rtol=1e-9)

    def test_even_window_is_refused(self, spectra):
        with pytest.raises(InputError, match="odd"):
            SavitzkyGolay(8, 2).fit(spectra.values())


@pytest.mark.parametrize("method", ["snv", "area", "max"])
def test_normalizers_make_scale_irrelevant(spectra, method):
    X = spectra.values()
    np.testing.assert_allclose(Normalizer(method).fit_transform(3 * X), Normalizer(method).fit_transform(X), rtol=1e-12)


class TestSNV(TransformerContract):
    def make(self):
        return Normalizer("snv")


class TestInternalStandard(TransformerContract):
    def make(self):
        return Normalizer("internal_standard", region=(240, 250), axis=AXIS)

    def test_ratio_to_region(self):
        X = np.ones((1, 64))
        out = self.make().fit_transform(X)
        assert np.isclose(out[0, 0] * ((AXIS >= 240) & (AXIS <= 250)).sum(), 1.0)


class TestScatterCorrection(TransformerContract):
    def make(self):
        return ScatterCorrection()

    def test_removes_offset_and_gain_against_the_reference(self, spectra):
        X = spectra.values()
        scattered = 0.7 + 1.8 * X[:1]
        corrected = self.make().fit(X).transform(scattered)
        reference = X.mean(axis=0)
        slope, offset = np.polyfit(reference, X[0], 1)
        np.testing.assert_allclose(corrected[0], (X[0] - offset) / slope, rtol=1e-8)


class TestStandardScaler(TransformerContract):
    def make(self):
        return StandardScaler()

    def test_reversible_and_standardised(self, spectra):
        X = spectra.values()
        scaler = self.make().fit(X)
        Z = scaler.transform(X)
        np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-10)
        np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-12)


class TestCrop(TransformerContract):
    def make(self):
        return Crop(220, 260, axis=AXIS)

    def test_axis_is_cropped(self):
        crop = self.make().fit(np.zeros((1, 64)))
        kept = crop.output_axis(AXIS)
        assert kept.min() >= 220 and kept.max() <= 260 and kept.size == ((AXIS >= 220) & (AXIS <= 260)).sum()


class TestBandMask(TransformerContract):
    def make(self):
        return BandMask([(210, 220), (280, 290)], axis=AXIS)

    def test_chemcam_bands_leave_the_seeds_channel_count(self):
        axis = np.linspace(240, 905, 6144)
        kept = BandMask(axis=axis).fit(np.zeros((1, 6144))).output_axis(axis)
        for low, high in CHEMCAM_MASKED_BANDS:
            assert not ((kept >= low) & (kept <= high)).any()
        assert 5300 < kept.size < 5700


class TestResampler(TransformerContract):
    def make(self):
        return Resampler(target_axis=np.linspace(210, 290, 40), axis=AXIS)

    def test_linear_signal_is_resampled_exactly(self):
        target = np.linspace(210, 290, 40)
        out = Resampler(target_axis=target, axis=AXIS).fit_transform((2 * AXIS + 1)[None, :])
        np.testing.assert_allclose(out[0], 2 * target + 1, rtol=1e-12)

    def test_refuses_extrapolation(self):
        with pytest.raises(InputError, match="reaches outside"):
            Resampler(target_axis=np.linspace(150, 250, 10), axis=AXIS).fit(np.zeros((1, 64)))


@pytest.mark.parametrize("estimator", [SavitzkyGolay(3, 1), Normalizer("snv"), StandardScaler(),
                                       BaselineCorrector("rolling_min", window=3, sigma=1.0)])
def test_sklearn_check_estimator(estimator):
    narrow = dict.fromkeys(["check_estimators_overwrite_params", "check_estimators_fit_returns_self",
                            "check_readonly_memmap_input", "check_fit2d_1feature", "check_fit_idempotent",
                            "check_fit_check_is_fitted", "check_n_features_in"],
                           "these checks use 1-2 channels, narrower than any Savitzky-Golay window: refused on purpose")
    check_estimator(estimator, expected_failed_checks=narrow if isinstance(estimator, SavitzkyGolay) else None)



def test_preprocess_keeps_images_and_updates_axis(spectra):
    image = spectra.with_intensity(spectra.values().reshape(3, 4, 64))
    out, pipeline = preprocess(image, [{"crop": {"start": 220, "stop": 260}}, {"normalize": {"method": "max"}}])
    assert out.is_image and out.intensity.shape[:2] == (3, 4)
    assert out.axis.min() >= 220 and out.n_channels == out.axis.size
    again, _ = preprocess(image, [], pipeline=pipeline)
    np.testing.assert_allclose(again.values(), out.values())


def test_average_by_group(spectra):
    averaged = average_by_group(spectra, "group")
    assert averaged.ids == ["g0", "g1", "g2"] and list(averaged.meta["n_averaged"]) == [4, 4, 4]
    np.testing.assert_allclose(averaged.values()[1], spectra.values()[1::3].mean(axis=0))
