"""Physics-based synthetic spectra with full ground truth."""
