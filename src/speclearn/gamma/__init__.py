"""Gamma-ray spectroscopy: readers, line data, detector response, simulator, identification, materials."""
