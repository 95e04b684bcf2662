"""Data sources: a spec's ``data:`` block -> an ``AuditDataset`` -> a slice."""
