"""Lightning-shaped import surface: ``from ember.callbacks import ModelCheckpoint, EarlyStopping, ...``.

Each built-in lives in its own module under :mod:`ember.plugins`; this module
imports them on first use. Lightning's module paths work too
(``ember.callbacks.progress.tqdm_progress``, ``ember.callbacks.model_checkpoint`` ...):
each is the plugin's module itself under a second name.
"""

from __future__ import annotations

from ember import _lazy
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

__getattr__, __dir__ = _lazy.attributes(
    __name__,
    {name: f"ember.plugins.{module}" for name, module in BUILTINS.items()},
    submodules=SUBMODULES,
    listed=[*__all__, *BUILTINS],
    own_names=False,
)
