"""One training epoch: batches, validation inside the epoch, scheduler steps, step logging, epoch end.

The per-batch path is kept short on purpose: hooks nobody implements are
looked up once per fit and skipped, and logged values reach the loggers only
every ``log_every_n_steps``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import TYPE_CHECKING, Any

from ember.core.data import Batches, batches, loader_generators
from ember.core.loops.dispatch import needs_transfer, transfer_batch
from ember.core.loops.evaluation import run_evaluation
from ember.core.loops.optimization import Optimization
from ember.core.loops.stopping import can_stop_early, epoch_should_end, max_steps_reached
from ember.core.seed import capture_rng, restore_rng
from ember.core.signatures import with_batch_idx
from ember.core.state import RunningStage
from ember.errors import EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


class TrainingEpoch:
    """Runs training epochs for one fit; hook lookups are done once, here."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.optimization: Optimization = trainer._optimization
        manager = trainer.plugin_manager
        self._batch_start = trainer._callers.get("on_train_batch_start")
        self._batch_end = trainer._callers.get("on_train_batch_end")
        module, overrides = trainer.lightning_module, trainer._module_hooks
        self._module_batch_start = (
            with_batch_idx(module.on_train_batch_start) if "on_train_batch_start" in overrides else None  # type: ignore[union-attr]
        )
        self._module_batch_end = (
            with_batch_idx(module.on_train_batch_end, leading=2) if "on_train_batch_end" in overrides else None  # type: ignore[union-attr]
        )
        self._replace_batch = trainer._callers.get("ember_train_batch")
        self.optimization.outputs_wanted = self._batch_end is not None or self._module_batch_end is not None
        late = {impl.plugin for impl in manager.hook.on_train_epoch_end.get_hookimpls() if impl.trylast}
        everyone = {impl.plugin for impl in manager.hook.on_train_epoch_end.get_hookimpls()}
        self._epoch_end_early = manager.subset_hook_caller("on_train_epoch_end", late)
        self._epoch_end_late = manager.subset_hook_caller("on_train_epoch_end", everyone - late)
        self._has_early, self._has_late = bool(everyone - late), bool(late)

    # ---------------------------------------------------------------- epoch
    def run(self) -> None:
        trainer, progress = self.trainer, self.trainer.fit_progress
        module = trainer.lightning_module
        loader = trainer._loaders["train"][0]
        _set_sampler_epoch(loader, progress.epoch)
        iterator = self._open_epoch(loader, trainer.num_training_batches)
        store, optimization = trainer._metrics, self.optimization
        batch_start, batch_end, replace_batch = self._batch_start, self._batch_end, self._replace_batch
        module_start, module_end = self._module_batch_start, self._module_batch_end
        transfer = needs_transfer(trainer)
        finish, guard = self._finish_batch, trainer._guard  # guard: signals and autoresume (core/signals.py)
        with contextlib.closing(iterator):
            if progress.pending is not None and finish(**progress.pending):
                iterator = _no_batches()
            for batch_idx, batch, is_last in iterator:
                if transfer:
                    batch = transfer_batch(trainer, batch, 0)
                store.batch = batch
                trainer._fx = "on_train_batch_start"
                if batch_start is not None:
                    batch_start(trainer=trainer, pl_module=module, batch=batch, batch_idx=batch_idx)
                if module_start is not None and module_start(batch, batch_idx) == -1:
                    break
                if replace_batch is not None:
                    step_batch = replace_batch(trainer=trainer, pl_module=module, batch=batch, batch_idx=batch_idx)
                    outputs = optimization.run(batch if step_batch is None else step_batch, batch_idx, is_last)
                else:
                    outputs = optimization.run(batch, batch_idx, is_last)
                stepped = optimization.stepped and optimization.automatic
                if stepped and trainer.lr_scheduler_configs:
                    self._step_schedulers("step", plateau=False, batch_idx=batch_idx)
                    if is_last:
                        self._step_schedulers("epoch", plateau=False)
                progress.pending = {"batch_idx": batch_idx, "is_last": is_last, "stepped": optimization.stepped}
                trainer._fx = "on_train_batch_end"
                if batch_end is not None:
                    batch_end(trainer=trainer, pl_module=module, outputs=outputs, batch=batch, batch_idx=batch_idx)
                if module_end is not None:
                    module_end(outputs, batch, batch_idx)
                if finish(batch_idx, is_last, optimization.stepped):
                    break
                if guard is not None and (optimization.stepped or not optimization.automatic):
                    guard.poll()
        self._end_epoch()

    def _open_epoch(self, loader: Any, count: float) -> Batches:
        """The epoch's batches; a resumed epoch redraws the interrupted one's order and skips what was done.

        A fresh epoch runs on_train_epoch_start, then notes the random state
        its batch order is drawn from. A resumed one (its on_train_epoch_start
        already ran) rebuilds that order from the noted state and continues
        with the random state the checkpoint was saved with.
        """
        trainer, progress = self.trainer, self.trainer.fit_progress
        resumed, progress.resume_rng = progress.resume_rng, None
        pending = progress.pending
        skip = progress.batches_in_epoch + (1 if pending is not None and not pending.get("counted") else 0)
        if skip == 0:
            if resumed:
                restore_rng(resumed)
            progress.cut = None
            trainer._hook("on_train_epoch_start")
            progress.epoch_rng = _capture_epoch_rng(loader)
            return batches(loader, count)
        now = capture_rng()
        if progress.epoch_rng is not None:
            _restore_epoch_rng(progress.epoch_rng, loader)
        iterator = batches(loader, count, skip) if skip < count else _no_batches()
        restore_rng(resumed or now)
        return iterator

    def _finish_batch(self, batch_idx: int, is_last: bool, stepped: bool, counted: bool = False) -> bool:
        """What follows on_train_batch_end: counting, step logging, validation, stepping; True to end the epoch."""
        trainer, progress, optimization = self.trainer, self.trainer.fit_progress, self.optimization
        if not counted:
            progress.batches_in_epoch += 1
            progress.total_batches += 1
            progress.pending["counted"] = True  # type: ignore[index]
            if stepped and ((progress.stepped_batches + 1) % trainer.log_every_n_steps == 0 or trainer.should_stop):
                trainer._log_to_loggers(trainer._metrics.take_step_metrics(), step=progress.stepped_batches)
            if self._should_validate(batch_idx, is_last):
                self._validate(zero_grad=stepped)
        if stepped and optimization.automatic and trainer.lr_scheduler_configs:
            self._step_schedulers("step", plateau=True, batch_idx=batch_idx)
        if stepped:
            progress.stepped_batches += 1
        progress.pending = None
        return epoch_should_end(trainer)

    def _end_epoch(self) -> None:
        trainer, progress = self.trainer, self.trainer.fit_progress
        self.optimization.check_finite()  # the epoch's last losses, before its end hooks
        progress.epoch_done = True
        cut = max_steps_reached(trainer) and progress.batches_in_epoch < trainer.num_training_batches
        if cut:  # a checkpoint from now on continues this epoch at the next batch
            progress.cut = {"epoch": progress.epoch, "batches_in_epoch": progress.batches_in_epoch}
            progress.cut["epoch_rng"] = progress.epoch_rng
        trainer._fx = "on_train_epoch_end"
        if self._has_early:
            self._epoch_end_early(trainer=trainer, pl_module=trainer.lightning_module)
        if "on_train_epoch_end" in trainer._module_hooks:
            trainer.lightning_module.on_train_epoch_end()  # type: ignore[union-attr]
        if self._has_late:
            self._epoch_end_late(trainer=trainer, pl_module=trainer.lightning_module)
        logged = trainer._metrics.end_epoch()
        trainer._log_to_loggers(logged, step=max(progress.stepped_batches - 1, 0))
        for logger in trainer.loggers if trainer.is_global_zero else ():
            logger.save()  # every finished epoch's rows reach disk
        if trainer.lr_scheduler_configs and self.optimization.automatic and not cut:
            self._step_schedulers("epoch", plateau=True)
        progress.epoch += 1
        progress.batches_in_epoch = 0
        progress.epoch_done = False
        progress.epoch_rng = None

    # ----------------------------------------------------------- validation
    def _should_validate(self, batch_idx: int, is_last: bool) -> bool:
        trainer = self.trainer
        if not (trainer._val_enabled if trainer._val_enabled is not None else trainer._validation_enabled()):
            return False
        every = trainer.check_val_every_n_epoch
        if every is not None and (trainer.fit_progress.epoch + 1) % every != 0:
            return False
        if trainer.should_stop and can_stop_early(trainer):
            return True
        interval = trainer.val_check_batch
        if interval == math.inf:
            return is_last
        current = trainer.fit_progress.total_batches - 1 if every is None else batch_idx
        return (current + 1) % int(interval) == 0

    def _validate(self, zero_grad: bool = True) -> None:
        trainer = self.trainer
        if zero_grad:  # as Lightning: free the gradients unless they are still being accumulated
            trainer._fx = "on_validation_model_zero_grad"
            trainer.lightning_module.on_validation_model_zero_grad()  # type: ignore[union-attr]
        if "val" not in trainer._loaders:
            trainer._load_loaders("val")
        run_evaluation(trainer, RunningStage.VALIDATING, trainer._loaders["val"], trainer.num_val_batches)
        trainer.state.stage = RunningStage.TRAINING

    # ----------------------------------------------------------- schedulers
    def _step_schedulers(self, interval: str, plateau: bool, batch_idx: int = 0) -> None:
        trainer = self.trainer
        index = (batch_idx if interval == "step" else trainer.fit_progress.epoch) + 1
        for config in trainer.lr_scheduler_configs:
            if config.interval != interval or config.reduce_on_plateau != plateau or index % config.frequency:
                continue
            metric = None
            if config.reduce_on_plateau:
                metrics = trainer.callback_metrics
                metric = metrics.get(config.monitor)
                if metric is None:
                    message = (
                        f"ReduceLROnPlateau monitors {config.monitor!r}, which was not logged; "
                        f"available metrics are: {sorted(metrics) or 'none'}"
                    )
                    if config.strict:
                        raise MisconfigurationError(message + ' (set "strict": False in the lr_scheduler dict to skip)')
                    warnings.warn(message + "; the scheduler was not stepped", EmberWarning, stacklevel=2)
                    continue
            trainer._fx = "lr_scheduler_step"
            trainer.lightning_module.lr_scheduler_step(config.scheduler, metric)  # type: ignore[union-attr]


def _no_batches() -> Batches:
    yield from ()


def _capture_epoch_rng(loader: Any) -> dict[str, Any]:
    """The global random state and that of the loader's own generators, from which its order is drawn."""
    return {**capture_rng(), "loader": [generator.get_state() for generator in loader_generators(loader)]}


def _restore_epoch_rng(state: dict[str, Any], loader: Any) -> None:
    restore_rng(state)
    for generator, saved in zip(loader_generators(loader), state.get("loader", [])):
        generator.set_state(saved)


def _set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Reseed epoch-aware samplers (DistributedSampler) so each epoch shuffles differently."""
    for sampler in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
