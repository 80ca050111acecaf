"""Silence third-party output a user of the command line cannot act on (installed by the CLI only).

- Lightning's "Tip: ... try installing litlogger / litmodels" info lines (advertising), and its
  accelerator lines ("GPU available: False, used: False", "TPU available: ...": the run's
  ``result.json`` records the device it used);
- the ``LeafSpec`` deprecation that Lightning's pytree helper triggers in torch;
- the ``torch.jit.script`` deprecation that library code calling it triggers (seen in transfer runs).
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["quiet_third_party"]


_NOISE = ("Tip: For seamless", "GPU available:", "TPU available:", "HPU available:", "IPU available:", "LOCAL_RANK:")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_NOISE) and "Tip: For seamless" not in record.getMessage()


def quiet_third_party() -> None:
    """Install the warning filters and the log filter (idempotent)."""
    warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated")
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated")
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "pytorch_lightning.utilities.rank_zero",
    ):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in log.filters):
            log.addFilter(_DropTips())
