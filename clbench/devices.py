"""Where a run computes: ``train.device`` / ``--device`` resolved to a ``torch.device``.

``auto`` picks CUDA when it is available, else Apple's MPS, else the CPU; ``cpu``, ``cuda``,
``cuda:N`` and ``mps`` ask for one. A device that is not available here is a one-line
:class:`~clbench.errors.UserError`, found before anything runs. The device is a setting, not part
of the run id: the same configuration and seed on a CPU and on a GPU is the same run.
"""

from __future__ import annotations

from typing import Any

from clbench.errors import UserError

#: The accepted spellings (also checked by ``TrainConfig.device``'s pattern).
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(spec: str) -> Any:
    """The ``torch.device`` that ``spec`` names here; :class:`UserError` when it is not available."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise UserError(
                "--device mps is not available here (no Apple GPU, or torch built without MPS); use --device cpu or auto"
            )
        return torch.device("mps")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(
                f"--device {spec} is not available here: torch finds no CUDA GPU (torch {torch.__version__}, "
                f"CUDA build: {torch.version.cuda or 'none'}); use --device cpu or auto"
            )
        index = int(spec.split(":", 1)[1]) if ":" in spec else torch.cuda.current_device()
        count = torch.cuda.device_count()
        if index >= count:
            raise UserError(f"--device {spec}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    raise UserError(f"bad device {spec!r}; allowed: {DEVICE_HELP}")


def describe_device(device: Any) -> dict[str, Any]:
    """What a record says of the device that ran it: its name and, for a GPU, the model."""
    import torch

    out: dict[str, Any] = {"device": str(device)}
    if device.type == "cuda":
        out["accelerator"] = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        out["accelerator"] = "Apple MPS"
    return out


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
