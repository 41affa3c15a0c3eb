"""Fitting: CSV data loading, optimizers, and the fit loop."""
