"""BatchSizeFinder: the largest batch size that trains without running out of memory, found before fit trains.

Picking a batch size by hand means guessing at memory use; this callback
measures it. At ``on_fit_start`` (before any other callback's, so they all
see the result) it runs a few training steps at growing batch sizes until one
raises an out-of-memory error, keeps the last size that worked, writes it to
the model or datamodule attribute the dataloaders read, and leaves the run as
it found it: weights, optimizer, schedulers, random state, counters, limits
and the other callbacks (which do not run during the trials) are untouched.
Nothing is written to disk.
"""

from __future__ import annotations

import gc
import warnings
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.core.messages import info
from ember.errors import EmberWarning, MisconfigurationError
from ember.markers import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer


_OOM_MESSAGES = (
    "CUDA out of memory.",
    "CUDNN_STATUS_NOT_SUPPORTED",
    "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED",
    "DefaultCPUAllocator: can't allocate memory",
    "MPS backend out of memory",
)


class BatchSizeFinder(Callback):
    """Find the largest batch size before an out-of-memory error; the result is in ``optimal_batch_size``.

    :param mode: ``"power"`` doubles the size until a trial runs out of
        memory; ``"binsearch"`` doubles, then bisects between the last size
        that worked and the first that failed, and takes ``margin`` off.
    :param steps_per_trial: training steps (and validation batches) per trial.
    :param init_val: the first size tried.
    :param max_trials: how many successful trials at most (power: trials in all).
    :param batch_arg_name: the attribute that holds the batch size, looked up on
        the model, ``model.hparams``, the datamodule and ``datamodule.hparams``.
    :param margin: the fraction taken off the size binsearch found (0 <= margin < 1).
    :param max_val: the largest size tried.
    """

    SUPPORTED_MODES = ("power", "binsearch")

    def __init__(
        self,
        mode: str = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
        margin: float = 0.05,
        max_val: int = 8192,
    ) -> None:
        mode = mode.lower() if isinstance(mode, str) else mode
        if mode not in self.SUPPORTED_MODES:
            raise MisconfigurationError(f"BatchSizeFinder(mode={mode!r}): accepted are {self.SUPPORTED_MODES}")
        if not 0.0 <= margin < 1.0:
            raise MisconfigurationError(f"BatchSizeFinder(margin={margin!r}): accepted is 0 <= margin < 1")
        for name, value in (
            ("steps_per_trial", steps_per_trial),
            ("init_val", init_val),
            ("max_trials", max_trials),
            ("max_val", max_val),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise MisconfigurationError(f"BatchSizeFinder({name}={value!r}): accepted is an int >= 1")
        self.optimal_batch_size: int | None = init_val
        self._mode = mode
        self._steps_per_trial = steps_per_trial
        self._init_val = init_val
        self._max_trials = max_trials
        self._batch_arg_name = batch_arg_name
        self._margin = margin
        self._max_val = max_val

    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        if stage != "fit":
            return
        if trainer.world_size > 1:
            raise MisconfigurationError("BatchSizeFinder does not support distributed runs (world_size > 1)")
        if trainer._given_loaders.get("train") is not None:
            raise MisconfigurationError(
                "BatchSizeFinder cannot resize dataloaders passed to fit() directly; build them in the model's or "
                f"datamodule's train_dataloader() from its `{self._batch_arg_name}` attribute"
            )
        from ember.core.tuning import attribute_holders

        if not attribute_holders(trainer, self._batch_arg_name):
            raise MisconfigurationError(
                f"BatchSizeFinder(batch_arg_name={self._batch_arg_name!r}): no such attribute on the model, "
                "model.hparams, the datamodule or datamodule.hparams"
            )
        if hasattr(pl_module, self._batch_arg_name) and self._batch_arg_name in pl_module.hparams:
            warnings.warn(
                f"both model.{self._batch_arg_name} and model.hparams.{self._batch_arg_name} exist; "
                f"model.{self._batch_arg_name} is the starting point and both receive the result",
                EmberWarning,
                stacklevel=2,
            )

    @hookimpl(tryfirst=True)
    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        self.scale_batch_size(trainer, pl_module)

    def scale_batch_size(self, trainer: Trainer, pl_module: Module) -> None:
        """Run the search now and store the size found in ``optimal_batch_size``."""
        if trainer.fast_dev_run:
            warnings.warn("BatchSizeFinder is skipped with fast_dev_run", EmberWarning, stacklevel=2)
            self.optimal_batch_size = None
            return
        from ember.core.tuning import RunSnapshot

        snapshot = RunSnapshot(trainer)
        try:
            search = _Search(trainer, self._batch_arg_name, self._steps_per_trial, self._max_val)
            if self._mode == "power":
                size = search.power(self._init_val, self._max_trials)
            else:
                size = search.binsearch(self._init_val, self._max_trials, self._margin)
        finally:
            snapshot.restore()
        info("BatchSizeFinder: fit continues with batch size %d", size, name=__name__)
        self.optimal_batch_size = size


class _Search:
    """The trials of one search: each sets the size, then trains ``steps`` steps and reports whether memory held."""

    def __init__(self, trainer: Trainer, name: str, steps: int, max_val: int) -> None:
        self.trainer, self.name, self.steps, self.max_val = trainer, name, steps, max_val
        self.dataset_length: int | None = None
        self.oom: BaseException | None = None

    def set(self, size: int) -> int:
        from ember.core.tuning import set_tuned_attribute

        set_tuned_attribute(self.trainer, self.name, size)
        return size

    def fits(self, size: int) -> bool:
        """Train with batch size ``size``; False when it ran out of memory (other errors propagate)."""
        from ember.core.tuning import run_training_steps

        self.set(size)
        out_of_memory = False
        try:
            loaders = run_training_steps(
                self.trainer, self.steps, limit_train_batches=1.0, limit_val_batches=self.steps
            )
        except RuntimeError as error:
            if not is_oom_error(error):
                raise
            self.oom = error.with_traceback(None)
            out_of_memory = True
        _free_memory(self.trainer)
        if out_of_memory:
            info("BatchSizeFinder: batch size %d ran out of memory", size, name=__name__)
            return False
        self.dataset_length = _dataset_length(loaders)
        info("BatchSizeFinder: batch size %d fits", size, name=__name__)
        return True

    def can_grow(self, size: int) -> bool:
        """Below max_val, and smaller than the training set (a bigger batch would be the same batch)."""
        return size < self.max_val and (self.dataset_length is None or size < self.dataset_length)

    def power(self, size: int, max_trials: int) -> int:
        size, last_fit = min(size, self.max_val), None
        for trial in range(max_trials):
            if self.fits(size):
                last_fit = size
                if trial + 1 >= max_trials or not self.can_grow(size):
                    break
                size = min(size * 2, self.max_val)
            elif last_fit is not None:
                size = last_fit
                break
            else:
                size = self._halve(size)
        return self.set(size)

    def binsearch(self, size: int, max_trials: int, margin: float) -> int:
        size = min(size, self.max_val)
        low, high, successes = size, None, 0
        while True:
            if self.fits(size):
                successes += 1
                low = size
                if successes >= max_trials or not self.can_grow(size):
                    break
                if high is None:
                    size = min(size * 2, self.max_val)
                elif high - low <= 1:
                    break
                else:
                    size = (low + high) // 2
                continue
            high = size
            if successes == 0:
                size = self._halve(size)
                continue
            size = (low + high) // 2  # low when the two are neighbours: the last size that fit
            if high - low <= 1:
                break
        if margin > 0:
            reduced = max(1, int(size * (1 - margin)))
            if reduced != size:
                info(
                    "BatchSizeFinder: margin %.1f%% takes batch size %d to %d",
                    margin * 100,
                    size,
                    reduced,
                    name=__name__,
                )
                size = reduced
        return self.set(size)

    def _halve(self, size: int) -> int:
        """Half of a size that ran out of memory; when even 1 did, that error."""
        if size <= 1:
            assert self.oom is not None
            raise self.oom
        return size // 2


def is_oom_error(error: BaseException) -> bool:
    """Whether ``error`` is an out-of-memory error (CUDA, cuDNN, CPU allocator or MPS)."""
    import torch

    if isinstance(error, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)):
        return True
    if not isinstance(error, RuntimeError) or len(error.args) != 1:
        return False
    return any(message in str(error.args[0]) for message in _OOM_MESSAGES)


def _free_memory(trainer: Trainer) -> None:
    """Give the accelerator's cached blocks back between trials (on the CPU, freed tensors are freed already)."""
    import torch

    if trainer.strategy.root_device.type == "cpu":
        return
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _dataset_length(loaders: list[Any]) -> int | None:
    """The number of samples the training loaders hold, when they can tell."""
    try:
        return sum(len(loader.dataset) for loader in loaders) or None
    except (AttributeError, TypeError):
        return None
