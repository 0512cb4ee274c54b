"""ModelCheckpoint: save the model during fit, keep the best k by a monitored metric, and a ``last.ckpt``.

It behaves as Lightning's ModelCheckpoint, argument for argument. Its hooks
are ``trylast`` so that a checkpoint holds what every other callback (and the
module's ``on_train_epoch_end``) changed or logged first. Files are written
with ``trainer.save_checkpoint``, which is atomic: a run killed mid-save
leaves the previous file intact, never half a ``.ckpt``.

Importing this module does not import torch.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ember.callback import Checkpoint
from ember.core import filesystem
from ember.core.messages import info
from ember.errors import EmberWarning, MisconfigurationError
from ember.markers import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ember.core.module import Module
    from ember.core.trainer import Trainer

#: ``{name}`` or ``{name:format_spec}`` in a filename template.
_FIELD = re.compile(r"\{([^{}:]+)(?::([^{}]*))?\}")


class ModelCheckpoint(Checkpoint):
    """Save checkpoints during fit: the best ``save_top_k`` by ``monitor``, or the latest without one.

    :param dirpath: folder for the files; by default ``<log_dir>/checkpoints`` with a logger,
        else ``<default_root_dir>/checkpoints``.
    :param filename: a template such as ``"{epoch}-{val_loss:.2f}"``; ``"{epoch}-{step}"`` by default.
    :param monitor: the logged metric that ranks checkpoints; None keeps the latest.
    :param verbose: log a line each time a checkpoint is (or is not) kept.
    :param save_last: True writes ``last.ckpt`` whenever a checkpoint is saved; ``"link"`` makes it a
        relative symlink to the latest checkpoint instead.
    :param save_top_k: how many to keep: k, 0 for none, -1 for all.
    :param save_on_exception: also save when the run raises.
    :param save_weights_only: save only the model's weights (no optimizer or loop state).
    :param mode: ``"min"`` or ``"max"``: which direction of ``monitor`` is better.
    :param auto_insert_metric_name: ``{epoch}`` becomes ``epoch=3`` (False: ``3``).
    :param every_n_train_steps: save every N optimizer steps (0 or None: not by steps).
    :param train_time_interval: save every so long (a ``timedelta``), checked after each batch.
    :param every_n_epochs: save every N epochs; the default when no trigger is given is 1.
    :param save_on_train_epoch_end: save at train-epoch end (True) or validation end (False);
        None decides from how often validation runs.
    :param enable_version_counter: add ``-v1``, ``-v2``... instead of overwriting a file of the same name.
    """

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_EQUALS_CHAR = "="
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".ckpt"
    STARTING_VERSION = 1

    def __init__(
        self,
        dirpath: str | os.PathLike[str] | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
    ) -> None:
        import torch

        if mode not in ("min", "max"):
            raise MisconfigurationError(f"ModelCheckpoint(mode={mode!r}): accepted are 'min' and 'max'")
        if save_last not in (None, True, False, "link"):
            raise MisconfigurationError(
                f"ModelCheckpoint(save_last={save_last!r}): accepted are None, True, False, 'link'"
            )
        if train_time_interval is not None and not isinstance(train_time_interval, timedelta):
            raise MisconfigurationError(
                f"ModelCheckpoint(train_time_interval={train_time_interval!r}): accepted are None or a datetime.timedelta"
            )
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_on_exception = save_on_exception
        self.save_weights_only = save_weights_only
        self.mode = mode
        self.auto_insert_metric_name = auto_insert_metric_name
        self.dirpath: str | None = _folder(dirpath) if dirpath else None
        self.filename = filename
        self._save_on_train_epoch_end = save_on_train_epoch_end
        self._enable_version_counter = enable_version_counter
        if every_n_train_steps is None and every_n_epochs is None and train_time_interval is None:
            every_n_epochs = 1
        self._every_n_train_steps: int = every_n_train_steps or 0
        self._every_n_epochs: int = every_n_epochs or 0
        self._train_time_interval = train_time_interval
        self._validate_arguments()

        self.current_score: torch.Tensor | None = None
        self.best_k_models: dict[str, torch.Tensor] = {}
        self.kth_best_model_path = ""
        self.kth_value: torch.Tensor = torch.tensor(math.inf if mode == "min" else -math.inf)
        self.best_model_score: torch.Tensor | None = None
        self.best_model_path = ""
        self.last_model_path = ""
        self._last_checkpoint_saved = ""
        self._last_global_step_saved = 0  # nothing to save before the first step
        self._last_time_checked: float | None = None
        self._defer_save_until_validation = False
        self._validation_ran = False
        self._warned_missing_monitor = False

    def _validate_arguments(self) -> None:
        def integer(name: str, value: Any, minimum: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise MisconfigurationError(f"ModelCheckpoint({name}={value!r}): accepted is an int >= {minimum}")

        integer("save_top_k", self.save_top_k, -1)
        integer("every_n_train_steps", self._every_n_train_steps, 0)
        integer("every_n_epochs", self._every_n_epochs, 0)
        triggers = (
            (self._every_n_train_steps >= 1) + (self._every_n_epochs >= 1) + (self._train_time_interval is not None)
        )
        if triggers > 1:
            raise MisconfigurationError(
                f"ModelCheckpoint(every_n_train_steps={self._every_n_train_steps}, every_n_epochs={self._every_n_epochs}, "
                f"train_time_interval={self._train_time_interval}): set at most one of the three; use several "
                "ModelCheckpoint callbacks to save on several schedules"
            )
        if self.monitor is None and self.save_top_k not in (-1, 0, 1):
            raise MisconfigurationError(
                f"ModelCheckpoint(save_top_k={self.save_top_k}, monitor=None): without a monitor there is nothing to "
                "rank the top k by; set monitor=... or save_top_k to -1, 0 or 1"
            )

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            monitor=self.monitor,
            mode=self.mode,
            every_n_train_steps=self._every_n_train_steps,
            every_n_epochs=self._every_n_epochs,
            train_time_interval=self._train_time_interval,
        )

    @property
    def every_n_epochs(self) -> int:
        return self._every_n_epochs

    # ------------------------------------------------------------------ hooks
    @hookimpl(trylast=True)
    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        self.dirpath = trainer.strategy.broadcast(self._resolve_dirpath(trainer))
        if stage != "fit":
            return
        self._validation_ran = False
        self._check_folder(trainer)
        if trainer.is_global_zero and self.save_top_k != 0 and filesystem.listdir(self.dirpath):
            warnings.warn(f"checkpoint directory {self.dirpath} exists and is not empty", EmberWarning, stacklevel=2)

    @hookimpl(trylast=True)
    def on_train_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._last_time_checked = time.monotonic()

    @hookimpl(trylast=True)
    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Save every ``every_n_train_steps`` steps or ``train_time_interval``."""
        skip_batch = self._every_n_train_steps < 1 or trainer.global_step % self._every_n_train_steps != 0
        skip_time, now = True, time.monotonic()
        if self._train_time_interval is not None:
            previous = self._last_time_checked
            skip_time = previous is None or now - previous < self._train_time_interval.total_seconds()
            skip_time = trainer.strategy.broadcast(skip_time)
        if skip_batch and skip_time:
            return
        if not skip_time:
            self._last_time_checked = now
        candidates = self._monitor_candidates(trainer)
        if self.monitor is not None and (self.monitor not in candidates or self._validation_follows(trainer)):
            # the monitored value is missing or about to be refreshed: save when validation has run
            self._defer_save_until_validation = True
            return
        if self._should_skip_saving_checkpoint(trainer):
            return
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    @hookimpl(trylast=True)
    def on_train_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_at_epoch_end(trainer, self._monitor_candidates(trainer))

    @hookimpl(trylast=True)
    def on_validation_end(self, trainer: Trainer, pl_module: Module) -> None:
        if trainer.sanity_checking:
            return
        self._validation_ran = True
        if self._should_skip_saving_checkpoint(trainer) or self._should_save_on_train_epoch_end(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        if self._defer_save_until_validation:
            self._defer_save_until_validation = False
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
            return
        self._save_at_epoch_end(trainer, candidates)

    @hookimpl(trylast=True)
    def on_exception(self, trainer: Trainer, pl_module: Module, exception: BaseException) -> None:
        if not self.save_on_exception or trainer.fast_dev_run or trainer.sanity_checking:
            return
        if self._last_global_step_saved == trainer.global_step or self.dirpath is None:
            return
        candidates = self._monitor_candidates(trainer)
        filepath = self.format_checkpoint_name(candidates)
        self._save_checkpoint(trainer, filepath)
        self._save_last_checkpoint(trainer, candidates)
        info(f"{type(exception).__name__} was raised ({exception}); saved checkpoint to {filepath}", name=__name__)

    @hookimpl(trylast=True)
    def on_train_end(self, trainer: Trainer, pl_module: Module) -> None:
        """``save_last`` holds even when nothing else was saved (as in Lightning), except under fast_dev_run."""
        if self.save_last and not self._last_checkpoint_saved and not trainer.fast_dev_run:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": self.best_k_models,
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_dirpath = state_dict.get("dirpath", self.dirpath)
        if saved_dirpath == self.dirpath:
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", self.kth_best_model_path)
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = state_dict.get("best_k_models", self.best_k_models)
            self.last_model_path = state_dict.get("last_model_path", self.last_model_path)
        else:
            warnings.warn(
                f"ModelCheckpoint's dirpath changed from {saved_dirpath!r} to {self.dirpath!r} since the checkpoint "
                "was saved; only best_model_path is restored (not best_model_score, best_k_models, "
                "kth_best_model_path, kth_value or last_model_path)",
                EmberWarning,
                stacklevel=2,
            )
        self.best_model_path = state_dict["best_model_path"]

    # ------------------------------------------------------------ public API
    def format_checkpoint_name(
        self,
        metrics: dict[str, Any],
        filename: str | None = None,
        ver: int | None = None,
        prefix: str | None = None,
    ) -> str:
        """The path a checkpoint with these metrics gets: ``dirpath/<filled template>[-vN].ckpt``.

        A field the metrics lack is filled with 0, as in Lightning.
        """
        template = filename or self.filename or "{epoch}" + self.CHECKPOINT_JOIN_CHAR + "{step}"

        def fill(match: re.Match[str]) -> str:
            name, spec = match.group(1), match.group(2) or ""
            value = metrics.get(name, 0)
            if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
                value = value.item()
            text = format(value, spec)
            return f"{name}{self.CHECKPOINT_EQUALS_CHAR}{text}" if self.auto_insert_metric_name else text

        name = _FIELD.sub(fill, template)
        if prefix is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join((prefix, name))
        if ver is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join((name, f"v{ver}"))
        name += self.FILE_EXTENSION
        return os.path.join(self.dirpath, name) if self.dirpath else name

    def check_monitor_top_k(self, trainer: Trainer, current: torch.Tensor | None = None) -> bool:
        """Whether a checkpoint scoring ``current`` belongs in the top k (the same answer on every process)."""
        if current is None:
            return False
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return True
        kth = float(self.best_k_models[self.kth_best_model_path])
        better = float(current) < kth if self.mode == "min" else float(current) > kth
        return trainer.strategy.reduce_boolean_decision(better)

    def file_exists(self, filepath: str | os.PathLike[str], trainer: Trainer) -> bool:
        """Whether ``filepath`` exists on global rank 0, agreed on by every process."""
        exists = filesystem.exists(filepath) if trainer.is_global_zero else False
        return trainer.strategy.reduce_boolean_decision(exists, all=False)

    def to_yaml(self, filepath: str | os.PathLike[str] | None = None) -> None:
        """Write ``best_k_models`` (path: score) to a YAML file, ``dirpath/best_k_models.yaml`` by default."""
        import yaml

        if filepath is None:
            if not self.dirpath:
                raise MisconfigurationError(
                    "ModelCheckpoint.to_yaml() needs a filepath before dirpath is known (setup)"
                )
            filepath = os.path.join(self.dirpath, "best_k_models.yaml")
        with filesystem.open_file(filepath, "w") as handle:
            yaml.dump({path: float(score) for path, score in self.best_k_models.items()}, handle)

    # --------------------------------------------------------------- helpers
    def _resolve_dirpath(self, trainer: Trainer) -> str:
        """``dirpath``, else ``<save_dir>/<name>/<version>/checkpoints`` of the first logger, else the root's."""
        if self.dirpath is not None:
            return self.dirpath
        if trainer.loggers:
            logger = trainer.loggers[0]
            save_dir = getattr(logger, "save_dir", None) or trainer.default_root_dir
            version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
            return os.path.join(save_dir, str(logger.name or ""), version, "checkpoints")
        return os.path.join(trainer.default_root_dir, "checkpoints")

    def _check_folder(self, trainer: Trainer) -> None:
        """Fail before the first batch if ``dirpath`` cannot be written; drop what killed saves left there."""
        problem = None
        if trainer.is_global_zero and self.dirpath and not filesystem.is_remote(self.dirpath):
            from ember.core.checkpoint import remove_stale_temporaries, unwritable_folder

            problem = unwritable_folder(self.dirpath)
            if problem is None and os.path.isdir(self.dirpath):
                for name in remove_stale_temporaries(self.dirpath):
                    info("removed %s from %s: a save that was killed left it", name, self.dirpath)
        problem = trainer.strategy.broadcast(problem)  # every rank stops, not only rank 0
        if problem is not None:
            raise MisconfigurationError(
                f"ModelCheckpoint cannot write checkpoints to dirpath={self.dirpath!r}: {problem}; "
                "pass a writable dirpath (or fix the folder's permissions)"
            )

    def _monitor_candidates(self, trainer: Trainer) -> dict[str, Any]:
        """What a filename and the monitor can use: the callback metrics plus ``epoch`` and ``step`` as ints."""
        import torch

        candidates: dict[str, Any] = dict(trainer.callback_metrics)
        epoch, step = candidates.get("epoch"), candidates.get("step")
        candidates["epoch"] = epoch.int() if isinstance(epoch, torch.Tensor) else torch.tensor(trainer.current_epoch)
        candidates["step"] = step.int() if isinstance(step, torch.Tensor) else torch.tensor(trainer.global_step)
        return candidates

    def _should_skip_saving_checkpoint(self, trainer: Trainer) -> bool:
        return (
            bool(trainer.fast_dev_run)
            or trainer.state.fn != "fit"
            or trainer.sanity_checking
            or self._last_global_step_saved == trainer.global_step
        )

    def _should_save_on_train_epoch_end(self, trainer: Trainer) -> bool:
        """Lightning's rule: at validation end when validation runs several times an epoch or not every epoch."""
        if self._save_on_train_epoch_end is not None:
            return self._save_on_train_epoch_end
        if trainer.check_val_every_n_epoch != 1:
            return False
        if sum(trainer.num_val_batches or [0]) == 0:
            return True
        return trainer.val_check_interval == 1.0

    def _validation_follows(self, trainer: Trainer) -> bool:
        """Whether this batch is the epoch's last and validation runs right after it (the monitor would be stale)."""
        if self._should_save_on_train_epoch_end(trainer):
            return False
        if trainer.fit_progress.batches_in_epoch + 1 < trainer.num_training_batches:
            return False
        if not trainer._validation_enabled() or not sum(trainer.num_val_batches or [1]):
            return False
        every = trainer.check_val_every_n_epoch
        return every is None or (trainer.current_epoch + 1) % every == 0

    def _save_at_epoch_end(self, trainer: Trainer, candidates: dict[str, Any]) -> None:
        if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
            self._save_topk_checkpoint(trainer, candidates)
        if self._last_global_step_saved == trainer.global_step or (
            self.save_last == "link" and self._last_checkpoint_saved
        ):
            self._save_last_checkpoint(trainer, candidates)

    def _save_topk_checkpoint(self, trainer: Trainer, candidates: dict[str, Any]) -> None:
        if self.save_top_k == 0:
            return
        if self.monitor is None:
            self._save_none_monitor_checkpoint(trainer, candidates)
            return
        if self.monitor not in candidates:
            message = (
                f"ModelCheckpoint(monitor={self.monitor!r}) could not find {self.monitor!r} in the logged metrics: "
                f"{sorted(candidates)}; log it with self.log({self.monitor!r}, value) in the Module"
            )
            if self._validation_ran:
                raise MisconfigurationError(message)
            if not self._warned_missing_monitor:
                self._warned_missing_monitor = True
                warnings.warn(message + " (no checkpoint is saved until it is logged)", EmberWarning, stacklevel=2)
        current = candidates.get(self.monitor)
        if self.check_monitor_top_k(trainer, current):
            assert current is not None
            self._update_best_and_save(current, trainer, candidates)
        elif self.verbose and current is not None:
            info(
                f"Epoch {int(candidates['epoch'])}, global step {int(candidates['step'])}: "
                f"{self.monitor!r} was not in top {self.save_top_k}",
                name=__name__,
            )

    def _save_none_monitor_checkpoint(self, trainer: Trainer, candidates: dict[str, Any]) -> None:
        filepath = self._free_name(trainer, candidates, None, keep=self.best_model_path)
        previous, self.best_model_path = self.best_model_path, filepath  # set first: it is part of the state
        self._save_checkpoint(trainer, filepath)
        if self.save_top_k == 1 and previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def _update_best_and_save(self, current: torch.Tensor, trainer: Trainer, candidates: dict[str, Any]) -> None:
        import torch

        k = len(self.best_k_models) + 1 if self.save_top_k == -1 else self.save_top_k
        replaced = None
        if len(self.best_k_models) == k and k > 0:
            replaced = self.kth_best_model_path
            self.best_k_models.pop(replaced)
        current = current.detach().clone()
        if torch.isnan(current):  # NaN ranks worst
            current = torch.tensor(math.inf if self.mode == "min" else -math.inf, device=current.device)
        filepath = self._free_name(trainer, candidates, None, keep=replaced)
        self.current_score = current
        self.best_k_models[filepath] = current
        worst, best = (max, min) if self.mode == "min" else (min, max)
        if len(self.best_k_models) == k:
            self.kth_best_model_path = worst(self.best_k_models, key=lambda path: float(self.best_k_models[path]))
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        self.best_model_path = best(self.best_k_models, key=lambda path: float(self.best_k_models[path]))
        self.best_model_score = self.best_k_models[self.best_model_path]
        if self.verbose:
            info(
                f"Epoch {int(candidates['epoch'])}, global step {int(candidates['step'])}: {self.monitor!r} reached "
                f"{float(current):0.5f} (best {float(self.best_model_score):0.5f}), saving model to {filepath!r} "
                f"as top {k}",
                name=__name__,
            )
        self._save_checkpoint(trainer, filepath)
        if replaced and self._should_remove_checkpoint(trainer, replaced, filepath):
            self._remove_checkpoint(trainer, replaced)

    def _save_last_checkpoint(self, trainer: Trainer, candidates: dict[str, Any]) -> None:
        if not self.save_last:
            return
        filepath = self._free_name(trainer, candidates, self.CHECKPOINT_NAME_LAST, keep=self.last_model_path)
        previous, self.last_model_path = self.last_model_path, filepath  # set first: it is part of the state
        if self.save_last == "link" and self._last_checkpoint_saved and self.save_top_k != 0:
            self._link_checkpoint(trainer, self._last_checkpoint_saved, filepath)
        else:
            self._save_checkpoint(trainer, filepath)
        if previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def _free_name(self, trainer: Trainer, candidates: dict[str, Any], filename: str | None, keep: str | None) -> str:
        """The formatted path, with ``-vN`` added while a file other than ``keep`` already has that name."""
        filepath = self.format_checkpoint_name(candidates, filename)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while filepath != keep and self.file_exists(filepath, trainer):
                filepath = self.format_checkpoint_name(candidates, filename, ver=version)
                version += 1
        return filepath

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        trainer.save_checkpoint(filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                notify = getattr(logger, "after_save_checkpoint", None)
                if callable(notify):
                    notify(self)

    @staticmethod
    def _link_checkpoint(trainer: Trainer, filepath: str, linkpath: str) -> None:
        """Make ``linkpath`` a relative symlink to ``filepath`` (a copy where links are not allowed)."""
        if trainer.is_global_zero and filesystem.is_remote(linkpath):  # no links there: a copy
            filesystem.remove(linkpath)
            fs, source = filesystem.filesystem(filepath)
            fs.copy(source, filesystem.filesystem(linkpath)[1])
        elif trainer.is_global_zero and os.path.abspath(filepath) != os.path.abspath(linkpath):
            if os.path.islink(linkpath) or os.path.isfile(linkpath):
                os.remove(linkpath)
            elif os.path.isdir(linkpath):
                shutil.rmtree(linkpath)
            try:
                os.symlink(os.path.relpath(filepath, os.path.dirname(linkpath)), linkpath)
            except OSError:
                shutil.copy(filepath, linkpath)
        trainer.strategy.barrier("ModelCheckpoint._link_checkpoint")

    def _should_remove_checkpoint(self, trainer: Trainer, previous: str, current: str) -> bool:
        """Never the file just written, one outside ``dirpath``, or the one this run resumed from."""
        if previous == current:
            return False
        assert self.dirpath is not None
        if filesystem.is_remote(previous):
            return previous != trainer.ckpt_path and previous.startswith(self.dirpath.rstrip("/") + "/")
        old = Path(previous).absolute()
        if trainer.ckpt_path is not None and old == Path(trainer.ckpt_path).absolute():
            return False
        assert self.dirpath is not None
        return Path(self.dirpath).absolute() in old.parents

    @staticmethod
    def _remove_checkpoint(trainer: Trainer, filepath: str) -> None:
        if not trainer.is_global_zero:
            return
        if not filesystem.is_remote(filepath) and os.path.isdir(filepath) and not os.path.islink(filepath):
            shutil.rmtree(filepath)  # a distributed checkpoint
        else:
            filesystem.remove(filepath)


def _folder(dirpath: str | os.PathLike[str]) -> str:
    """A local folder as an absolute real path; an fsspec URL as it is (a ``file://`` URL as its local path)."""
    if filesystem.is_remote(dirpath):
        return filesystem.normalize(dirpath)
    return os.path.realpath(os.path.expanduser(filesystem.normalize(dirpath)))
