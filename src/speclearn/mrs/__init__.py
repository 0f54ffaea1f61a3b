"""Magnetic resonance spectroscopy (Spectralligence D1.2, section 3.4): complex FIDs (`data.MRSData`), readers and
writers (`io`), the shipped ISMRM 2016 basis (`basis`), a simulator (`simulate`), classical baselines
(`registration`, `lcm`, `preprocess`) and small CNNs (`align_cnn`, `quantifier`, `artifacts`)."""
