"""sha256 of files and arrays, for provenance and caching."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_array(array: np.ndarray, digest: hashlib._Hash | None = None) -> hashlib._Hash:
    """Update (or start) a digest with an array's dtype, shape and bytes."""
    digest = digest or hashlib.sha256()
    contiguous = np.ascontiguousarray(array)
    digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
    digest.update(contiguous.tobytes())
    return digest
