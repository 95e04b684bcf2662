"""Explainers: local (attribution per sample, same shape as the input) and global."""
