"""One call of fit, validate, test or predict, from attaching the model to teardown, in Lightning's order.

configure_callbacks, prepare_data, setup (datamodule, callbacks, model),
configure_model, restoring weights and callback state from ``ckpt_path``,
moving the model to its device, configure_optimizers, on_fit_start,
restoring optimizer and loop state, the stage itself, on_fit_end, teardown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.core.callbacks_list import as_callback_list, lend_logging
from ember.core.loops.evaluation import print_results, run_evaluation
from ember.core.loops.optimization import Optimization
from ember.core.optimizers import parse_optimizers
from ember.core.precision import Precision
from ember.core.state import RunningStage, TrainerFn, TrainerStatus
from ember.core.trust import plugin_header
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer

_STAGES = {
    TrainerFn.VALIDATING: RunningStage.VALIDATING,
    TrainerFn.TESTING: RunningStage.TESTING,
    TrainerFn.PREDICTING: RunningStage.PREDICTING,
}


def run(
    trainer: Trainer,
    fn: TrainerFn,
    model: Module,
    loaders: dict[str, Any],
    datamodule: Any,
    ckpt_path: str | Path | None,
    options: dict[str, Any],
) -> Any:
    """Run ``fn`` on ``model``; return what the user-facing method returns."""
    _attach(trainer, fn, model, loaders, datamodule)
    if fn == TrainerFn.FITTING:  # the run folder, before setup hooks and loggers claim a version
        from ember.core.autoresume import prepare_fit

        ckpt_path = prepare_fit(trainer, ckpt_path)
    trainer._fx = "configure_callbacks"
    trainer._set_plugins(trainer._user_callbacks, as_callback_list(model.configure_callbacks()))
    lend_logging(trainer.callbacks, model)
    trainer._refresh_hook_table()
    trainer._precision = Precision(trainer._precision_flag, trainer.strategy.root_device)
    if trainer.strategy.local_rank == 0:
        for owner in (datamodule, model):
            if owner is not None and callable(getattr(owner, "prepare_data", None)):
                trainer._fx = "prepare_data"
                owner.prepare_data()
    trainer.strategy.setup_environment()
    stage = fn.value
    if datamodule is not None and callable(getattr(datamodule, "setup", None)):
        datamodule.setup(stage)
    if fn == TrainerFn.FITTING and trainer.is_global_zero and (header := plugin_header(trainer._plugin_records)):
        print(header)
    trainer._hook("setup", stage=stage)
    if "configure_model" in trainer._module_hooks:
        trainer._fx = "configure_model"
        model.configure_model()
    trainer._refresh_hook_table()
    checkpoint = _load_checkpoint(trainer, fn, ckpt_path, options.get("weights_only"))
    if checkpoint is not None:
        from ember.core.checkpoint import restore_modules_and_callbacks

        restore_modules_and_callbacks(trainer, checkpoint)
        if fn == TrainerFn.FITTING and trainer.is_global_zero:
            for logger in trainer.loggers:
                if callable(getattr(logger, "after_resume", None)):
                    logger.after_resume()
    trainer._metrics.reset()
    trainer._precision.convert_module(model)
    trainer.model = trainer.strategy.setup_module(model)
    if checkpoint is not None and "state_dict" not in checkpoint:  # a distributed checkpoint's shards
        from ember.core.distributed_checkpoint import load_sharded_model

        load_sharded_model(trainer, checkpoint)
    if fn == TrainerFn.FITTING:
        _configure_optimizers(trainer, model)
        trainer._hook("on_fit_start")
    _log_hyperparams(trainer)
    if checkpoint is not None and fn == TrainerFn.FITTING:
        from ember.core.checkpoint import restore_training_state

        restore_training_state(trainer, checkpoint)
    results = _run_stage(trainer, fn, options)
    if trainer.profiler is not None and fn == TrainerFn.FITTING:
        _report_profile(trainer)
    if fn == TrainerFn.FITTING:
        trainer._hook("on_fit_end")
    if datamodule is not None and callable(getattr(datamodule, "teardown", None)):
        datamodule.teardown(stage)
    trainer._hook("teardown", stage=stage)
    if fn == TrainerFn.FITTING:
        from ember.core.autoresume import finish_fit

        finish_fit(trainer)
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            logger.finalize("success")
    trainer.strategy.teardown()
    trainer.state.status = TrainerStatus.FINISHED
    trainer.state.stage = None
    trainer._fx = None
    return results


def _attach(trainer: Trainer, fn: TrainerFn, model: Module, loaders: dict[str, Any], datamodule: Any) -> None:
    trainer.state.fn = fn
    trainer.state.status = TrainerStatus.RUNNING
    trainer.state.stage = None
    trainer.should_stop = False
    trainer.interrupted = False
    trainer.lightning_module = model
    trainer.model = model
    model.trainer = trainer
    trainer.datamodule = datamodule
    if datamodule is not None:
        datamodule.trainer = trainer
    trainer._given_loaders = loaders
    trainer._loaders = {}
    trainer._val_enabled = None
    if fn == TrainerFn.FITTING:
        if model.automatic_optimization is False and trainer.accumulate_grad_batches != 1:
            raise MisconfigurationError(
                f"Trainer(accumulate_grad_batches={trainer.accumulate_grad_batches}) does not apply to manual "
                "optimization; accumulate in training_step instead"
            )
        if not callable(getattr(model, "training_step", None)):
            raise MisconfigurationError(f"{type(model).__qualname__} has no training_step(); fit() needs one")


def _configure_optimizers(trainer: Trainer, model: Module) -> None:
    trainer._fx = "configure_optimizers"
    if not callable(getattr(model, "configure_optimizers", None)):
        raise MisconfigurationError(f"{type(model).__qualname__} has no configure_optimizers(); fit() needs one")
    optimizers, schedulers = parse_optimizers(model.configure_optimizers())  # type: ignore[operator]
    if model.automatic_optimization and len(optimizers) > 1:
        raise MisconfigurationError(
            f"configure_optimizers() returned {len(optimizers)} optimizers; several optimizers need manual "
            "optimization: set self.automatic_optimization = False and step them in training_step"
        )
    if model.automatic_optimization and not optimizers:
        raise MisconfigurationError(
            "configure_optimizers() returned no optimizer; automatic optimization needs one "
            "(return an optimizer, or set self.automatic_optimization = False)"
        )
    trainer.optimizers, trainer.lr_scheduler_configs = optimizers, schedulers
    trainer._optimization = Optimization(trainer)


def _load_checkpoint(
    trainer: Trainer, fn: TrainerFn, ckpt_path: Any, weights_only: bool | None
) -> dict[str, Any] | None:
    """Read ``ckpt_path`` ("last", "best" or a file); safe loading unless ``weights_only=False`` is passed."""
    trainer.fit_progress.resume_rng = None
    trainer.ckpt_path = None
    if ckpt_path is None:
        return None
    from ember.core.checkpoint import check_resumable, load_checkpoint_file, resolve_ckpt_path

    path = resolve_ckpt_path(trainer, ckpt_path)
    if path is None:
        return None
    trainer.ckpt_path = str(path)
    sharded = trainer.strategy.writes_distributed_checkpoints or hasattr(trainer.strategy, "connect_devices")
    checkpoint = load_checkpoint_file(path, weights_only=weights_only is not False, full=not sharded)
    if fn == TrainerFn.FITTING:
        check_resumable(checkpoint, path)
    return checkpoint


def _log_hyperparams(trainer: Trainer) -> None:
    if not trainer.loggers or not trainer.is_global_zero:
        return
    params: dict[str, Any] | None = None
    model, datamodule = trainer.lightning_module, trainer.datamodule
    for owner in (model, datamodule):
        # as in Lightning: only what save_hyperparameters() recorded (with logger=True) is logged
        if owner is not None and getattr(owner, "_log_hyperparams", False):
            params = {**(params or {}), **owner.hparams_initial}
    for logger in trainer.loggers:
        # file loggers claim their folder now: an unwritable one fails before the first batch
        getattr(logger, "log_dir", None)
        if params is not None:
            logger.log_hyperparams(params)
        logger.log_graph(model)
        logger.save()


def _run_stage(trainer: Trainer, fn: TrainerFn, options: dict[str, Any]) -> Any:
    if fn == TrainerFn.FITTING:
        from ember.core.loops.fit import run_fit

        run_fit(trainer)
        return None
    stage = _STAGES[fn]
    if fn == TrainerFn.PREDICTING:
        from ember.core.loops.prediction import run_prediction

        return run_prediction(trainer, options.get("return_predictions", True))
    kind = stage.dataloader_prefix
    step_name = f"{stage.hook_prefix}_step"
    if not callable(getattr(trainer.lightning_module, step_name, None)):
        raise MisconfigurationError(
            f"{type(trainer.lightning_module).__qualname__} has no {step_name}(); Trainer.{fn.value}() needs one"
        )
    trainer._load_loaders(kind)
    counts = trainer._counts(kind)
    if not any(counts):
        return []  # as Lightning: limit_*_batches=0 (or empty loaders) skips the loop and its hooks
    results = run_evaluation(trainer, stage, trainer._loaders[kind], counts)
    if options.get("verbose", True) and trainer.is_global_zero:
        print_results(stage, results)
    return results


def _report_profile(trainer: Trainer) -> None:
    """Print the plugin profile and send its numbers to the loggers, on global rank 0."""
    profiler = trainer.profiler
    if profiler is None or not trainer.is_global_zero:
        return
    print(profiler.table())
    metrics = profiler.metrics()
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step)
