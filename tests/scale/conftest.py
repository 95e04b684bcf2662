"""The local Ray cluster the scale tests run on (loopback only, 2 CPUs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A 2-CPU Ray cluster on 127.0.0.1 for the requesting module; its GCS address."""
    context = ray.init(
        num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False
    )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()
