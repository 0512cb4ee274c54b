"""Autoresume: one run folder per run, and a resume checkpoint in it that is always fresh.

The run folder is ``trainer.log_dir``: the first logger's ``version_N`` folder (``default_root_dir``
with ``logger=False``). The resume checkpoint is ``<run folder>/checkpoints/resume.ckpt``; it is
written at every signal (:mod:`ember.core.signals`) and, with ``Trainer(autoresume=...)``, every
``every_n_train_steps`` steps and every ``train_time_interval``, whatever ModelCheckpoint keeps.
With autoresume on, a file logger without a fixed version reuses the highest ``version_N`` folder
that holds a resume checkpoint, and fit loads it; a finished fit removes it, so the next start of the
script is a new run.
"""

from __future__ import annotations

import datetime
import os
from typing import TYPE_CHECKING, Any

from ember.core import filesystem
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer

RESUME_FILE = "resume.ckpt"
DEFAULTS: dict[str, Any] = {"every_n_train_steps": None, "train_time_interval": datetime.timedelta(minutes=10)}


def parse(value: Any) -> dict[str, Any] | None:
    """``Trainer(autoresume=...)``: False/None (off), True (the defaults) or a dict overriding them."""
    if value is None or value is False:
        return None
    if value is True:
        return dict(DEFAULTS)
    if isinstance(value, dict) and set(value) <= set(DEFAULTS):
        config = {**DEFAULTS, **value}
        every, interval = config["every_n_train_steps"], config["train_time_interval"]
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise MisconfigurationError(f"autoresume every_n_train_steps={every!r}; accepted: a positive int or None")
        if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
            config["train_time_interval"] = datetime.timedelta(seconds=interval)
        elif interval is not None and not isinstance(interval, datetime.timedelta):
            raise MisconfigurationError(
                f"autoresume train_time_interval={interval!r}; accepted: a datetime.timedelta, seconds, or None"
            )
        return config
    raise MisconfigurationError(
        f"Trainer(autoresume={value!r}); accepted are True, False, or a dict with keys {sorted(DEFAULTS)}"
    )


def prepare_fit(trainer: Trainer, ckpt_path: Any) -> Any:
    """Before setup: adopt the run folder, set the resume checkpoint's path and the step guard; the ckpt_path to load."""
    from ember.core.signals import StepGuard

    config = trainer._autoresume
    if ckpt_path == "auto":
        config, ckpt_path = config or dict(DEFAULTS), None
    trainer._autoresume_on = config is not None
    if config is not None:
        _adopt_version(trainer)
        trainer._resume_path = resume_path(trainer)
    watch = trainer._signal_watch
    if config is not None or (watch is not None and watch.signals):
        every = config["every_n_train_steps"] if config else None
        interval = config["train_time_interval"] if config else None
        trainer._guard = StepGuard(trainer, watch, every, interval)
    if trainer._resume_path is not None and filesystem.isfile(trainer._resume_path):
        return trainer._resume_path
    return ckpt_path


def finish_fit(trainer: Trainer) -> None:
    """A finished autoresume fit removes its resume checkpoint: starting the script again starts a new run."""
    path = trainer._resume_path
    if trainer._autoresume_on and path and trainer.is_global_zero and filesystem.isfile(path):
        filesystem.remove(path)


def resume_path(trainer: Trainer) -> str:
    """``<run folder>/checkpoints/resume.ckpt``; the run folder is ``trainer.log_dir``."""
    if trainer._resume_path is None:
        trainer._resume_path = filesystem.join(trainer.log_dir, "checkpoints", RESUME_FILE)
    return trainer._resume_path


def previous_last_checkpoint(trainer: Trainer) -> str | None:
    """``ckpt_path="last"`` when this run has none: the newest ``last*.ckpt`` or ``resume.ckpt`` in the
    ``checkpoints`` folder of the highest-numbered earlier ``version_N`` of the first logger that has one."""
    root = getattr(trainer.loggers[0], "root_dir", None) if trainer.loggers else None
    if not isinstance(root, str) or not filesystem.isdir(root):
        return None
    own = os.path.basename(os.path.normpath(str(trainer.log_dir)))
    versions = sorted((int(e[len("version_") :]) for e in filesystem.listdir(root) if _is_version(e)), reverse=True)
    for number in versions:
        if f"version_{number}" == own:
            continue
        folder = filesystem.join(root, f"version_{number}", "checkpoints")
        found = [
            filesystem.join(folder, entry)
            for entry in filesystem.listdir(folder)
            if entry == RESUME_FILE or (entry.startswith("last") and entry.endswith(".ckpt"))
        ]
        if found:
            return max(found, key=filesystem.modified_ns)
    return None


def _adopt_version(trainer: Trainer) -> None:
    """File loggers without a fixed version take the highest ``version_N`` that holds a resume checkpoint."""
    if not trainer.loggers:
        return
    first = trainer.loggers[0]
    root = getattr(first, "root_dir", None)
    if getattr(first, "_version", 0) is not None or not root or not filesystem.isdir(root):
        return
    numbers = sorted((int(e[len("version_") :]) for e in filesystem.listdir(root) if _is_version(e)), reverse=True)
    for number in numbers:
        if filesystem.isfile(filesystem.join(root, f"version_{number}", "checkpoints", RESUME_FILE)):
            for logger in trainer.loggers:
                if hasattr(logger, "_version") and logger._version is None:
                    logger._version = number
            return


def _is_version(entry: str) -> bool:
    return entry.startswith("version_") and entry[len("version_") :].isdigit()
