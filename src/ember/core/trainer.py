"""The Trainer: owns the plugin manager, checks the flags, and runs fit, validate, test and predict."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ember.callback import Callback
from ember.core import discovery, filesystem, flags
from ember.core.callbacks_list import arrange_callbacks, check_callbacks, merge_model_callbacks
from ember.core.loops.evaluation import ModuleModes
from ember.core.messages import info
from ember.core.messages import logger as ember_logger
from ember.core.metrics import MetricStore
from ember.core.module import Module
from ember.core.pluginmanager import PluginManager
from ember.core.precision import Precision, normalize_precision
from ember.core.profiler import make_profiler
from ember.core.properties import TrainerProperties
from ember.core.state import FitProgress, RunningStage, TrainerFn, TrainerState, TrainerStatus
from ember.core.strategies import select_strategy
from ember.core.trust import collision_hint
from ember.errors import MisconfigurationError, Preempted


class Trainer(TrainerProperties):
    """Runs a :class:`ember.Module`; every flag has Lightning's name and meaning.

    The Trainer owns a :class:`~ember.core.pluginmanager.PluginManager`
    (``trainer.plugin_manager``) and calls every hook through it: callbacks,
    plain ``@ember.hookimpl`` plugins and plugins found through entry points
    alike.
    """

    def __init__(
        self,
        *,
        accelerator: str = "auto",
        strategy: Any = "auto",
        devices: Any = "auto",
        num_nodes: int = 1,
        precision: Any = "32-true",
        logger: Any = None,
        callbacks: Any = None,
        fast_dev_run: bool | int = False,
        max_epochs: int | None = None,
        min_epochs: int | None = None,
        max_steps: int = -1,
        min_steps: int | None = None,
        max_time: Any = None,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        val_check_interval: int | float | None = None,
        overfit_batches: int | float = 0.0,
        check_val_every_n_epoch: int | None = 1,
        num_sanity_val_steps: int | None = None,
        log_every_n_steps: int | None = None,
        enable_checkpointing: bool | None = None,
        enable_progress_bar: bool | None = None,
        enable_model_summary: bool | None = None,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
        deterministic: bool | str | None = None,
        benchmark: bool | None = None,
        inference_mode: bool = True,
        use_distributed_sampler: bool = True,
        profiler: Any = None,
        reload_dataloaders_every_n_epochs: int = 0,
        default_root_dir: str | Path | None = None,
        disable_plugins: Any = None,
        strict_plugins: bool | None = None,
        autoresume: Any = False,
        requeue_signals: Sequence[str | int] | None = ("SIGTERM", "SIGUSR1"),
        slurm_requeue: bool = False,
    ) -> None:
        self._init_kwargs = {name: value for name, value in locals().items() if name != "self"}  # for ddp_spawn
        ember_logger()  # the ember logger shows INFO messages until the user configures logging
        self.fast_dev_run = flags.fast_dev_run(fast_dev_run)
        self.max_epochs = flags.optional_int("max_epochs", max_epochs, 0, allow=(-1,))
        self.min_epochs = flags.optional_int("min_epochs", min_epochs, 0)
        self.max_steps = flags.optional_int("max_steps", max_steps, 0, allow=(-1,))
        self.min_steps = flags.optional_int("min_steps", min_steps, 0)
        self.max_time = flags.duration(max_time)
        if self.max_epochs is None and self.max_steps in (-1, None) and self.max_time is None:
            self.max_epochs = 1000
        self.limit_train_batches = flags.count_or_fraction("limit_train_batches", limit_train_batches)
        self.limit_val_batches = flags.count_or_fraction("limit_val_batches", limit_val_batches)
        self.limit_test_batches = flags.count_or_fraction("limit_test_batches", limit_test_batches)
        self.limit_predict_batches = flags.count_or_fraction("limit_predict_batches", limit_predict_batches)
        self.val_check_interval = flags.val_check_interval(val_check_interval)
        self.check_val_every_n_epoch = flags.optional_int("check_val_every_n_epoch", check_val_every_n_epoch, 1)
        self.num_sanity_val_steps = flags.optional_int("num_sanity_val_steps", num_sanity_val_steps, 0, allow=(-1,))
        if self.num_sanity_val_steps is None:
            self.num_sanity_val_steps = 2
        self.log_every_n_steps = flags.optional_int("log_every_n_steps", log_every_n_steps, 1) or 50
        self.accumulate_grad_batches: int = (
            flags.optional_int("accumulate_grad_batches", accumulate_grad_batches, 1) or 1
        )
        self.gradient_clip_val = flags.positive_float("gradient_clip_val", gradient_clip_val)
        self.gradient_clip_algorithm = flags.choice(
            "gradient_clip_algorithm", gradient_clip_algorithm, (None, "norm", "value")
        )
        self.reload_dataloaders_every_n_epochs = flags.optional_int(
            "reload_dataloaders_every_n_epochs", reload_dataloaders_every_n_epochs, 0
        )
        self.inference_mode = bool(inference_mode)
        self.use_distributed_sampler = bool(use_distributed_sampler)
        flags.choice("deterministic", deterministic, (None, True, False, "warn"))
        flags.choice("benchmark", benchmark, (None, True, False))
        self._apply_determinism(deterministic, benchmark)
        if self.fast_dev_run:
            n = self.fast_dev_run
            self.limit_train_batches = self.limit_val_batches = n
            self.limit_test_batches = self.limit_predict_batches = n
            self.max_epochs, self.max_steps, self.num_sanity_val_steps = 1, n, 0
            self.val_check_interval, self.log_every_n_steps = 1.0, 1
            logger = False if logger is None else logger
        self.overfit_batches = flags.count_or_fraction("overfit_batches", overfit_batches, 0.0)
        if self.overfit_batches > 0:  # as Lightning: the same first batches of the train and val sets, in order
            self.limit_train_batches = self.limit_val_batches = self.overfit_batches
        self._default_root_dir = filesystem.normalize(default_root_dir) if default_root_dir is not None else os.getcwd()
        self.strategy = select_strategy(accelerator, strategy, devices, num_nodes)
        self._precision_flag = normalize_precision(precision)
        self._precision = Precision("32-true", self.strategy.root_device)
        self.profiler = make_profiler(profiler)
        from ember.core import autoresume as _autoresume
        from ember.core.signals import parse_signals

        self._autoresume = _autoresume.parse(autoresume)  # see ember.core.autoresume and signals
        self._requeue_signals, self.slurm_requeue = parse_signals(requeue_signals), bool(slurm_requeue)
        self._signal_watch: Any = None
        self._guard: Any = None
        self._resume_path: str | None = None
        self._autoresume_on = False

        self.state = TrainerState()
        self.fit_progress = FitProgress()
        self.should_stop = False
        self.sanity_checking = False
        self.interrupted = False
        self._metrics = MetricStore()
        self._metrics.sync = self.strategy.reduce
        self._modes = ModuleModes()
        self._fx: str | None = None
        self.lightning_module: Module | None = None
        self.model: torch.nn.Module | None = None
        self.datamodule: Any = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self._stepping_optimizers: list[Any] = []
        self.lr_scheduler_configs: list[Any] = []
        self.num_training_batches: float = math.inf
        self.num_val_batches: list[float] = []
        self.num_test_batches: list[float] = []
        self.num_predict_batches: list[float] = []
        self.ckpt_path: str | None = None
        self.val_check_batch: float = math.inf
        self._given_loaders: dict[str, Any] = {}
        self._loaders: dict[str, list[Any]] = {}
        self._val_enabled: bool | None = None
        self._seen_eval_batches: list[int] = []
        self._optimization: Any = None
        from ember.core.loops.prediction import PredictionLoop

        self.predict_loop = PredictionLoop()
        self._callers: dict[str, Any] = {}
        self._module_hooks: frozenset[str] = frozenset()

        self.plugin_manager = PluginManager()
        self._user_callbacks = (
            list(callbacks) if isinstance(callbacks, (list, tuple)) else ([callbacks] if callbacks is not None else [])
        )
        check_callbacks(self._user_callbacks)
        self._plugin_records = discovery.plugins_for_trainer(
            self,
            user_plugins=self._user_callbacks,
            enable_checkpointing=enable_checkpointing,
            enable_progress_bar=enable_progress_bar,
            enable_model_summary=enable_model_summary,
            disable_plugins=disable_plugins,
            strict=strict_plugins,
        )
        self._set_plugins(self._user_callbacks, model_callbacks=[])
        from ember.loggers import resolve_loggers

        self.loggers = resolve_loggers(logger, self._default_root_dir)

    # ------------------------------------------------------------- plugins
    def _set_plugins(self, user: list[Any], model_callbacks: list[Callback]) -> None:
        """(Re)register the user's plugins, the model's callbacks and the discovered plugins, in call order."""
        plugins = arrange_callbacks(
            merge_model_callbacks(user + [r.plugin for r in self._plugin_records], model_callbacks)
        )
        for name, plugin in list(self.plugin_manager.list_name_plugin()):
            if plugin is not None:
                self.plugin_manager.unregister(name=name)
        names = {id(r.plugin): r for r in self._plugin_records}
        for plugin in plugins:
            record = names.get(id(plugin))
            if record is None:
                self.plugin_manager.register(plugin)
            else:
                self.plugin_manager.register(plugin, name=record.name, origin=record.origin)
        self.callbacks: list[Callback] = [p for p in plugins if isinstance(p, Callback)]
        self._check_state_keys()

    def __getstate__(self) -> dict[str, Any]:
        """Pickles and deep copies leave the plugin manager behind; ``__setstate__`` rebuilds it."""
        from ember.core.pickling import trainer_state

        return trainer_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        from ember.core.pickling import restore_trainer

        restore_trainer(self, state)

    def _check_state_keys(self) -> None:
        seen: dict[str, Callback] = {}
        for callback in self.callbacks:
            if getattr(type(callback), "state_dict", None) is Callback.state_dict:
                continue
            key = callback.state_key
            if key in seen:
                raise MisconfigurationError(
                    f"two stateful callbacks share the state_key {key!r}: {seen[key]!r} and {callback!r}; "
                    "their states would overwrite each other in checkpoints. Give the class a state_key "
                    "property that tells instances apart (see Callback._generate_state_key)"
                    + collision_hint(self._plugin_records, seen[key], callback)
                )
            seen[key] = callback

    def _refresh_hook_table(self) -> None:
        from ember.core.loops.dispatch import module_overrides

        if self.profiler is not None:
            self.profiler.instrument(self.plugin_manager)
        self._callers = self.plugin_manager.callers()
        self._module_hooks = module_overrides(self.lightning_module)

    def _hook(self, name: str, **kwargs: Any) -> None:
        """Call the plugins' hook ``name``, then the module's, each only if implemented."""
        self._fx = name
        caller = self._callers.get(name)
        if caller is not None:
            caller(trainer=self, pl_module=self.lightning_module, **kwargs)
        if name in self._module_hooks:
            getattr(self.lightning_module, name)(*kwargs.values())

    # ------------------------------------------------------------ entry points
    def fit(
        self,
        model: Module,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Any = None,
        ckpt_path: str | Path | None = None,
        weights_only: bool | None = None,
    ) -> None:
        """Train ``model``; resume from ``ckpt_path`` ("last", "best" or a file) when given.

        ``ckpt_path`` is read with ``torch.load(weights_only=True)`` unless
        ``weights_only=False`` is passed, which may run code hidden in the file:
        only for checkpoints you trust (the same for validate, test and predict).
        """
        from ember.core.datamodule import DataModule

        if isinstance(train_dataloaders, DataModule):
            datamodule, train_dataloaders = train_dataloaders, None
        loaders = {"train": train_dataloaders, "val": val_dataloaders}
        self._launch(TrainerFn.FITTING, model, loaders, datamodule, ckpt_path, weights_only=weights_only)

    def validate(
        self,
        model: Module | None = None,
        dataloaders: Any = None,
        ckpt_path: str | Path | None = None,
        verbose: bool = True,
        datamodule: Any = None,
        weights_only: bool | None = None,
    ) -> list[dict[str, float]]:
        """Run one validation pass; return one dict of metrics per dataloader."""
        loaders = {"val": dataloaders}
        options = {"verbose": verbose, "weights_only": weights_only}
        return self._launch(TrainerFn.VALIDATING, model, loaders, datamodule, ckpt_path, **options)  # type: ignore[no-any-return]

    def test(
        self,
        model: Module | None = None,
        dataloaders: Any = None,
        ckpt_path: str | Path | None = None,
        verbose: bool = True,
        datamodule: Any = None,
        weights_only: bool | None = None,
    ) -> list[dict[str, float]]:
        """Run the test loop; return one dict of metrics per dataloader."""
        loaders = {"test": dataloaders}
        options = {"verbose": verbose, "weights_only": weights_only}
        return self._launch(TrainerFn.TESTING, model, loaders, datamodule, ckpt_path, **options)  # type: ignore[no-any-return]

    def predict(
        self,
        model: Module | None = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        return_predictions: bool | None = None,
        ckpt_path: str | Path | None = None,
        weights_only: bool | None = None,
    ) -> Any:
        """Run ``predict_step`` over the predict dataloaders; return the predictions."""
        from ember.core.datamodule import DataModule

        if isinstance(dataloaders, DataModule):
            datamodule, dataloaders = dataloaders, None
        keep = (self.strategy.world_size == 1) if return_predictions is None else return_predictions
        options = {"return_predictions": keep, "weights_only": weights_only}
        return self._launch(TrainerFn.PREDICTING, model, {"predict": dataloaders}, datamodule, ckpt_path, **options)

    def _launch(
        self,
        fn: TrainerFn,
        model: Module | None,
        loaders: dict[str, Any],
        datamodule: Any,
        ckpt_path: Any,
        **options: Any,
    ) -> Any:
        if model is None and ckpt_path is None and fn != TrainerFn.FITTING and self._best_checkpoint():
            ckpt_path = "best"  # as Lightning: evaluating the fitted model means its best checkpoint
            info(
                f"Trainer.{fn.value}() was called without a model: using the best checkpoint of the previous fit, "
                f"{self._best_checkpoint()}. Pass ckpt_path='last' or a path to choose another."
            )
        model = model if model is not None else self.lightning_module
        if not isinstance(model, Module):
            raise MisconfigurationError(
                f"Trainer.{fn.value}() needs an ember.Module, got {type(model).__name__}"
                + ("" if model is not None else " (no model was passed and none was fitted before)")
            )
        return self.strategy.launch(self._run_guarded, fn, model, loaders, datamodule, ckpt_path, options)

    def _run_guarded(self, *arguments: Any) -> Any:
        """One run on this process; errors go through on_exception, Ctrl-C ends with exit code 1."""
        from ember.core.run import run
        from ember.core.signals import SignalWatch, ignoring_ctrl_c, requeue_slurm_job

        self._guard, self._resume_path = None, None
        self._signal_watch = SignalWatch(self._requeue_signals if arguments[0] == TrainerFn.FITTING else ())
        self._signal_watch.install()
        try:
            result = run(self, *arguments)
        except Preempted as preempted:  # a signal, at a step boundary after the resume checkpoint (signals.py)
            with ignoring_ctrl_c():
                self._on_exception(preempted, status="preempted")
                if self.slurm_requeue and self.strategy.is_global_zero:
                    requeue_slurm_job()
            raise SystemExit(preempted.exit_code) from None
        except KeyboardInterrupt as interrupt:
            with ignoring_ctrl_c():
                print("\nDetected KeyboardInterrupt, attempting graceful shutdown ...", file=sys.stderr)
                self._on_exception(interrupt)
            raise SystemExit(1) from None
        except BaseException as exception:
            self._on_exception(exception)
            raise
        finally:
            self._signal_watch.restore()
            self._guard = None
        self._signal_watch.pass_on()
        return result

    def _best_checkpoint(self) -> str:
        """The best_model_path of the first checkpoint callback that has one, or ""."""
        paths = (getattr(c, "best_model_path", "") for c in self.checkpoint_callbacks)
        return next((path for path in paths if path), "")

    def _on_exception(self, exception: BaseException, status: str = "failed") -> None:
        """Every plugin's on_exception once, loggers finalized as failed; no end or teardown hook follows."""
        if self.state.status == TrainerStatus.INTERRUPTED:
            return
        self.state.status = TrainerStatus.INTERRUPTED
        self.interrupted = True
        blamed = self.plugin_manager.blame(exception)
        if blamed is not None and hasattr(exception, "add_note"):
            name, hook = blamed
            exception.add_note(f"ember: raised in hook {hook!r} of plugin {self.plugin_manager.describe(name)}")
        try:
            if self.lightning_module is not None:
                caller = self.plugin_manager.hook.on_exception
                if caller.get_hookimpls():
                    caller(trainer=self, pl_module=self.lightning_module, exception=exception)
                if self.datamodule is not None and callable(getattr(self.datamodule, "on_exception", None)):
                    self.datamodule.on_exception(exception)
            self.strategy.on_exception(exception)
        finally:
            if self.strategy.is_global_zero:
                for logger in self.loggers:
                    logger.finalize(status)
            self.strategy.teardown()

    # ---------------------------------------------------------------- data
    def _load_loaders(self, kind: str) -> None:
        """Ask for the ``kind`` dataloaders (argument, datamodule or model) and count their batches."""
        from ember.core import data

        self._fx = f"{kind}_dataloader"
        source = data.source_loaders(kind, self._given_loaders.get(kind), self.datamodule, self.lightning_module)
        if kind == "train":
            if source is None:
                raise MisconfigurationError(
                    "fit() has no training data: pass train_dataloaders=..., a datamodule=..., "
                    "or define train_dataloader() on the model"
                )
            loaders = [source]
        else:
            loaders = data.as_list(source)
            self._seen_eval_batches = [0] * len(loaders)
        if self.overfit_batches > 0 and kind in ("train", "val"):
            loaders = [data.without_shuffling(loader, kind) for loader in loaders]
        loaders = [self.strategy.process_dataloader(loader, kind, self.use_distributed_sampler) for loader in loaders]
        for loader in loaders:
            data.seed_workers(loader, self.global_rank)
        self._loaders[kind] = loaders
        counts = self._counts(kind)
        if kind == "train":
            self.num_training_batches = counts[0]
            self.val_check_batch = data.val_check_batch(
                self.val_check_interval, counts[0], self.check_val_every_n_epoch
            )
        elif kind == "val":
            self.num_val_batches = counts
            self._val_enabled = any(counts)
        else:
            setattr(self, f"num_{kind}_batches", counts)

    def _counts(self, kind: str) -> list[float]:
        from ember.core.data import limited_length

        flag = f"limit_{'val' if kind == 'val' else kind}_batches"
        return [limited_length(loader, getattr(self, flag), flag) for loader in self._loaders[kind]]

    def _validation_enabled(self) -> bool:
        """Whether fit validates: a validation_step, validation data, and limit_val_batches above 0."""
        if self._val_enabled is None:
            module, datamodule = self.lightning_module, self.datamodule
            has_data = self._given_loaders.get("val") is not None or any(
                callable(getattr(owner, "val_dataloader", None)) for owner in (datamodule, module) if owner is not None
            )
            self._val_enabled = bool(
                has_data and callable(getattr(module, "validation_step", None)) and self.limit_val_batches != 0
            )
        return self._val_enabled

    def _log_to_loggers(self, metrics: dict[str, torch.Tensor], step: int, add_epoch: bool = True) -> None:
        """Send logged values to every logger as floats, from global rank 0; with the current epoch unless told not."""
        if not metrics or not self.loggers or not self.strategy.is_global_zero:
            return
        values = list(metrics.values())
        kinds = {(value.dtype, value.device, value.shape) for value in values}
        if len(values) > 1 and len(kinds) == 1 and values[0].numel() == 1:
            floats = [float(number) for number in torch.stack(values).flatten().tolist()]  # one device sync, not N
        else:
            floats = [float(value.item()) for value in values]
        numbers: dict[str, float] = dict(zip(metrics, floats))
        if add_epoch:
            numbers.setdefault("epoch", self.fit_progress.epoch)
        for logger in self.loggers:
            logger.log_metrics(numbers, step=step)

    # ------------------------------------------------------------- helpers
    def _apply_determinism(self, deterministic: Any, benchmark: Any) -> None:
        self.deterministic = deterministic
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=deterministic == "warn")
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if benchmark is not None or deterministic:
            torch.backends.cudnn.benchmark = bool(benchmark) and not deterministic
        self.benchmark = torch.backends.cudnn.benchmark

    def save_checkpoint(self, filepath: str | Path, weights_only: bool = False, storage_options: Any = None) -> None:
        """Write a checkpoint of the current run to ``filepath`` atomically (global rank 0 writes)."""
        if self.lightning_module is None:
            raise MisconfigurationError("save_checkpoint() needs a model: call fit, validate, test or predict first")
        from ember.core.checkpoint import save_checkpoint

        save_checkpoint(self, filepath, weights_only)

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self.is_global_zero:
            print(*args, **kwargs)

    @property
    def stage(self) -> RunningStage | None:
        return self.state.stage
