"""Lightning-shaped import surface: ``from ember.callbacks import ModelCheckpoint, EarlyStopping, ...``.

Each built-in lives in its own module under :mod:`ember.plugins`; this module
imports them on first use. Lightning's module paths work too
(``ember.callbacks.progress.tqdm_progress``, ``ember.callbacks.model_checkpoint`` ...):
each is the plugin's module itself under a second name.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ember.callback import Callback, Checkpoint

__all__ = ["Callback", "Checkpoint"]

#: Public name -> module under ember.plugins that defines it.
BUILTINS: dict[str, str] = {
    "BackboneFinetuning": "finetuning",
    "BaseFinetuning": "finetuning",
    "BasePredictionWriter": "prediction_writer",
    "BatchSizeFinder": "batch_size_finder",
    "DeviceStatsMonitor": "device_stats_monitor",
    "EMAWeightAveraging": "weight_averaging",
    "EarlyStopping": "early_stopping",
    "GradientAccumulationScheduler": "gradient_accumulation_scheduler",
    "LambdaCallback": "lambda_function",
    "LearningRateFinder": "lr_finder",
    "LearningRateMonitor": "lr_monitor",
    "ModelCheckpoint": "model_checkpoint",
    "ModelPruning": "pruning",
    "ModelSummary": "model_summary",
    "OnExceptionCheckpoint": "on_exception_checkpoint",
    "ProgressBar": "progress_bar",
    "RichModelSummary": "rich_model_summary",
    "RichProgressBar": "rich_progress",
    "SpikeDetection": "spike_detection",
    "StochasticWeightAveraging": "stochastic_weight_avg",
    "TQDMProgressBar": "tqdm_progress",
    "ThroughputMonitor": "throughput_monitor",
    "Timer": "timer",
    "WeightAveraging": "weight_averaging",
}


#: Lightning's submodule paths, each the same module as its ember home (see the files beside this one).
SUBMODULES = frozenset(
    ("callback", "early_stopping", "finetuning", "lr_monitor", "model_checkpoint", "prediction_writer", "progress")
)


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return import_module(f"ember.callbacks.{name}")
    module = BUILTINS.get(name)
    if module is None:
        raise AttributeError(f"module 'ember.callbacks' has no attribute {name!r}")
    value = getattr(import_module(f"ember.plugins.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(BUILTINS))
