"""Where a run computes: the spec's ``device`` resolved, described, and its memory.

``device: auto`` is the first CUDA device when torch sees one, else the CPU; ``cpu``,
``cuda`` and ``cuda:N`` are taken as written, and one torch cannot use is a spec error at
``device`` (exit 2, before the run folder exists). Text and structured inputs run on the
CPU for now (their feeds build tensors on the CPU): ``auto`` picks the CPU for them, an
explicit CUDA device is a spec error.

The run puts its model on the device (``runner.plan_run``) and calls it through
``OnDevice`` (``runner.with_precision``): inputs are moved to the model's device and the
outputs come back to where the inputs were, so an explainer or metric that computes on
the CPU still works unchanged, and one that hands its inputs over on the device
(``Explainer.on_device``) keeps its whole computation there.
"""

from __future__ import annotations

import os
import platform
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from auditor.errors import SpecIssue

#: Share of the device's free memory one pass of an expanding method may take.
MEMORY_SHARE = 0.25
#: Rows per pass at most on a GPU (as many as the CPU rule allows small models).
GPU_MAX_ROWS = 2**16
#: Precisions that need a CUDA device.
CUDA_PRECISIONS = ("float16",)
#: The text of torch's warning for an op without a deterministic implementation
#: (``torch.use_deterministic_algorithms(True, warn_only=True)``).
NONDETERMINISTIC = re.compile(r"^\s*(.+?) does not have a deterministic implementation")
#: torch's warning for cuBLAS calls without ``CUBLAS_WORKSPACE_CONFIG`` (set by
#: ``exact_float32`` unless the user set it otherwise).
CUBLAS = re.compile(r"this operation is not deterministic because it uses CuBLAS")
#: What ``nondeterministic_ops`` lists for it.
CUBLAS_OP = "cuBLAS (CUBLAS_WORKSPACE_CONFIG not :4096:8 or :16:8)"
#: What torch's warnings for nondeterministic operations say.
WARNING_TEXT = (
    r".*(does not have a deterministic implementation|not deterministic because it uses CuBLAS)"
)


def resolve_device(
    name: str, *, cpu_only: str | None = None
) -> tuple[torch.device, list[SpecIssue]]:
    """The torch device for the spec's ``device`` value and the issues with it.

    ``cpu_only`` names inputs that must run on the CPU (e.g. "text"): ``auto`` is then the
    CPU and an explicit CUDA device an issue. On any issue the device returned is the CPU.
    """
    cpu = torch.device("cpu")
    if name == "cpu":
        return cpu, []
    available = torch.cuda.is_available()
    if name == "auto":
        return (torch.device("cuda", 0) if available and cpu_only is None else cpu), []
    if cpu_only is not None:
        message = f"{cpu_only} data runs on the CPU only (yet); use cpu or auto"
        return cpu, [SpecIssue(message, ("device",))]
    if not available:
        why = (
            "this torch is built without CUDA"
            if torch.version.cuda is None
            else f"torch (built for CUDA {torch.version.cuda}) sees no CUDA device"
        )
        return cpu, [SpecIssue(f"{why}; use cpu or auto", ("device",))]
    device = torch.device(name)
    index = 0 if device.index is None else device.index
    count = torch.cuda.device_count()
    if index >= count:
        message = (
            f"{name} is not one of the {count} CUDA device(s) torch sees (cuda:0 to "
            f"cuda:{count - 1}); use one of them, cpu or auto"
        )
        return cpu, [SpecIssue(message, ("device",))]
    return torch.device("cuda", index), []


def precision_issues(precision: str, device: torch.device) -> list[SpecIssue]:
    """Precisions the device cannot run (float16 autocast is for CUDA only)."""
    if precision in CUDA_PRECISIONS and device.type != "cuda":
        return [
            SpecIssue(
                f"precision {precision} runs on a CUDA device only; this run's device is "
                f"{device.type}: use bfloat16 or float32 there",
                ("precision",),
            )
        ]
    return []


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s first parameter (or buffer) is; the CPU for a model without any."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def device_label(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: provenance's ``device``."""
    if device.type != "cuda":
        return device.type
    index = 0 if device.index is None else device.index
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def describe_device(device: torch.device) -> dict[str, Any]:
    """What the run computed on: for a CUDA device its name, compute capability, the CUDA
    version torch was built for, the driver's version and total and free memory (bytes);
    for the CPU its model name and logical cores."""
    if device.type != "cuda":
        return {
            "type": "cpu",
            "name": cpu_model(),
            "cores": _cpu_count(),
        }
    index = 0 if device.index is None else device.index
    props = torch.cuda.get_device_properties(index)
    free, total = torch.cuda.mem_get_info(index)
    return {
        "type": "cuda",
        "index": index,
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "multiprocessors": int(props.multi_processor_count),
        "cuda": torch.version.cuda,
        "driver": driver_version(),
        "memory_total": int(total),
        "memory_free": int(free),
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpu_count() -> int:
    return os.cpu_count() or 1


def driver_version() -> str | None:
    """The NVIDIA driver's version (``/proc/driver/nvidia/version``, else NVML), or None."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8")
        found = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9][0-9.]+)", text)
        if found:
            return found.group(1)
    except OSError:
        pass
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no NVML: the driver's version is not known
        return None


def free_memory(device: torch.device) -> int | None:
    """Bytes a CUDA device can still give this process (free on the device plus what
    torch's caching allocator holds unused); None for the CPU."""
    if device.type != "cuda":
        return None
    index = 0 if device.index is None else device.index
    free, _total = torch.cuda.mem_get_info(index)
    cached = torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
    return int(free + max(0, cached))


def memory_rows(device: torch.device, bytes_per_row: int) -> int | None:
    """Rows one pass may take on a CUDA device: ``MEMORY_SHARE`` of its free memory over
    ``bytes_per_row``, at most ``GPU_MAX_ROWS`` (at least 1); None for the CPU, whose
    passes are sized for its caches instead (``auditor.explainers.passes``).

    Rounded down to a power of two: how a sum is split into passes changes its float
    rounding, so the row count should not follow every small change in what other
    processes hold on the device (the same run twice, a Ray worker beside the driver).
    """
    free = free_memory(device)
    if free is None:
        return None
    rows = max(1, min(GPU_MAX_ROWS, int(free * MEMORY_SHARE) // max(1, bytes_per_row)))
    return 1 << (rows.bit_length() - 1)


def exact_float32() -> None:
    """float32 on CUDA as on the CPU, and reproducible: no TF32 in matrix products and
    convolutions (cuDNN allows it by default: about 3 significant digits, and results that
    differ from the CPU's by far more than float error), and a cuBLAS workspace setting
    that makes its products deterministic (``CUBLAS_WORKSPACE_CONFIG``, unless already set;
    read when cuBLAS starts, so before the run's first product). The run restores the TF32
    flags when it ends (``runner.deterministic_algorithms``)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


class OnDevice(nn.Module):
    """The run's model on its device, under CUDA autocast for ``bfloat16``/``float16``.

    Inputs go to the model's device (a no-op when they are there already; autograd flows
    back through the copy) and outputs, as float32, to the device the inputs came from.
    Layer paths in a spec name modules of the user's model: ``wrapped_model``.
    """

    def __init__(self, module: nn.Module, device: torch.device, dtype: torch.dtype | None) -> None:
        super().__init__()
        self.module = module
        self.device = device
        self.dtype = dtype
        self.wrapped_model = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        source = x.device
        x = x.to(self.device, non_blocking=False)
        if self.dtype is None:
            out = self.module(x)
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                out = self.module(x)
        return out.float().to(source)


@contextmanager
def nondeterministic_ops() -> Iterator[list[str]]:
    """Collect the ops torch warns have no deterministic implementation (in
    ``warn_only`` mode), each name once, in the order first seen; other warnings are
    shown as before. Every occurrence is caught, also ones Python would show only once."""
    found: list[str] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=WARNING_TEXT)
        show = warnings.showwarning

        def record(
            message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
        ) -> None:
            text = str(message)
            matched = NONDETERMINISTIC.match(text)
            op = matched.group(1) if matched else CUBLAS_OP if CUBLAS.search(text) else None
            if op is None:
                show(message, category, *args, **kwargs)
            elif op not in found:
                found.append(op)

        warnings.showwarning = record
        yield found
