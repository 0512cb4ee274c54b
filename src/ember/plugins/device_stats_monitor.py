"""DeviceStatsMonitor: log CPU and accelerator memory statistics around every batch.

Memory creeping up from batch to batch, or a CPU pegged by data loading,
shows in these curves long before an out-of-memory error or a slow epoch.
Keys are Lightning's: ``DeviceStatsMonitor.<hook>/<stat>``, e.g.
``DeviceStatsMonitor.on_train_batch_start/cpu_percent`` or
``DeviceStatsMonitor.on_train_batch_end/allocated_bytes.all.current``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer


class DeviceStatsMonitor(Callback):
    """Log device statistics at the start and end of each train, validation and test batch.

    :param cpu_stats: None (default) logs CPU statistics when training on the CPU
        and CUDA memory statistics on a GPU; True adds the CPU statistics on a GPU
        too; False logs nothing on the CPU and only CUDA statistics on a GPU.

    CPU statistics (through psutil): ``cpu_percent``, ``cpu_vm_percent`` and
    ``cpu_swap_percent``; CUDA statistics: every entry of
    ``torch.cuda.memory_stats`` (bytes and counts). Values are logged every
    ``log_every_n_steps`` with the loggers' step, so fit needs a logger.
    """

    def __init__(self, cpu_stats: bool | None = None) -> None:
        self._cpu_stats = cpu_stats

    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        if stage != "fit":
            return
        if not trainer.loggers:
            raise MisconfigurationError(
                "DeviceStatsMonitor needs a logger, but the Trainer has none (logger=False); "
                "pass logger=True or a Logger to the Trainer, or remove the callback"
            )
        if self._wants_cpu_stats(trainer.strategy.root_device.type):
            try:
                import psutil  # noqa: F401
            except ImportError:
                raise ModuleNotFoundError(
                    "DeviceStatsMonitor logs CPU statistics through psutil, which is not installed: "
                    "pip install psutil, or pass cpu_stats=False"
                ) from None

    def on_train_batch_start(self, trainer: Trainer, *_: Any) -> None:
        self._log_device_stats(trainer, "on_train_batch_start")

    def on_train_batch_end(self, trainer: Trainer, *_: Any) -> None:
        self._log_device_stats(trainer, "on_train_batch_end")

    def on_validation_batch_start(self, trainer: Trainer, *_: Any) -> None:
        self._log_device_stats(trainer, "on_validation_batch_start")

    def on_validation_batch_end(self, trainer: Trainer, *_: Any) -> None:
        self._log_device_stats(trainer, "on_validation_batch_end")

    def on_test_batch_start(self, trainer: Trainer, *_: Any) -> None:
        self._log_device_stats(trainer, "on_test_batch_start")

    def on_test_batch_end(self, trainer: Trainer, *_: Any) -> None:
        self._log_device_stats(trainer, "on_test_batch_end")

    def _wants_cpu_stats(self, device_type: str) -> bool:
        return self._cpu_stats is True or (self._cpu_stats is None and device_type == "cpu")

    def _log_device_stats(self, trainer: Trainer, hook_name: str) -> None:
        step = trainer.fit_progress.stepped_batches
        if (step + 1) % trainer.log_every_n_steps != 0 and not trainer.should_stop:
            return
        if not trainer.loggers or not trainer.is_global_zero:
            return
        device = trainer.strategy.root_device
        stats: dict[str, float] = {}
        if device.type == "cuda":
            stats.update(cuda_stats(device))
        if self._wants_cpu_stats(device.type):
            stats.update(cpu_stats())
        if not stats:
            return
        prefix = f"{type(self).__qualname__}.{hook_name}/"
        for logger in trainer.loggers:
            logger.log_metrics({prefix + key: value for key, value in stats.items()}, step=step)


def cpu_stats() -> dict[str, float]:
    """System-wide CPU utilisation, RAM and swap use, in percent."""
    import psutil

    return {
        "cpu_vm_percent": psutil.virtual_memory().percent,
        "cpu_percent": psutil.cpu_percent(),
        "cpu_swap_percent": psutil.swap_memory().percent,
    }


def cuda_stats(device: Any) -> dict[str, float]:
    """The CUDA caching allocator's statistics for ``device``: bytes, block counts, allocation events."""
    import torch

    return dict(torch.cuda.memory_stats(device))
