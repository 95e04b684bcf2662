"""A third-party auditor plugin package used by the tests."""
