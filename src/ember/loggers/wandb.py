"""WandbLogger: metrics, hyperparameters, media and checkpoints in Weights & Biases.

Lightning's arguments and behaviour, behind the ``ember[wandb]`` extra. The
run starts (``wandb.init``) when first needed, on global rank 0 only; with
``offline=True`` or ``WANDB_MODE=offline`` it writes to ``save_dir/wandb``
and can be synced later with ``wandb sync``.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ember.core.rank import rank_zero_only, rank_zero_warn
from ember.errors import EmberWarning
from ember.loggers.base import Logger, _number, as_params, require
from ember.loggers.model_logging import ModelLogging, UploadsCheckpoints

if TYPE_CHECKING:  # pragma: no cover
    from wandb.sdk.wandb_run import Run

STEP_METRIC = "trainer/global_step"


class WandbLogger(UploadsCheckpoints, Logger):
    """Log to a W&B run; ``self.logger.experiment`` is the ``wandb`` run for anything else.

    :param name: the run's display name.
    :param save_dir: the folder W&B writes its files into (``save_dir/wandb``).
    :param version: the run id, to resume a run (the same as ``id``).
    :param offline: write locally only, to sync later.
    :param dir: the same as ``save_dir`` (W&B's name for it).
    :param id: the run id, to resume a run.
    :param anonymous: log anonymously.
    :param project: the W&B project (default ``WANDB_PROJECT``, else "ember_logs").
    :param log_model: upload checkpoints as artifacts: ``"all"`` as they are saved, ``True`` when the
        run ends (every one as it is saved with ``save_top_k=-1``), ``False`` none.
    :param experiment: a run already started with ``wandb.init``, to log into.
    :param prefix: put before every metric name, joined with "-".
    :param checkpoint_name: the model artifact's name (default ``model-<run id>``).
    :param add_file_policy: W&B's ``policy`` for the checkpoint files added to artifacts.
    :param kwargs: passed on to ``wandb.init`` (``entity``, ``group``, ``tags``, ``config``, ...).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        name: str | None = None,
        save_dir: str | os.PathLike[str] = ".",
        version: str | None = None,
        offline: bool = False,
        dir: str | os.PathLike[str] | None = None,
        id: str | None = None,
        anonymous: bool | None = None,
        project: str | None = None,
        log_model: bool | str = False,
        experiment: Run | None = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
        add_file_policy: Literal["mutable", "immutable"] = "mutable",
        **kwargs: Any,
    ) -> None:
        require("wandb", "wandb", "WandbLogger")
        self._models = ModelLogging(log_model)
        self._prefix = prefix
        self._experiment = experiment
        self._checkpoint_name = checkpoint_name
        self._add_file_policy = add_file_policy
        self._project = project or os.environ.get("WANDB_PROJECT", "ember_logs")
        folder = os.fspath(save_dir) if dir is None or os.fspath(save_dir) != "." else os.fspath(dir)
        self._save_dir = folder
        self._id = version or id
        self._name = name
        self._init = {
            "name": name,
            "project": self._project,
            "dir": os.path.abspath(folder),  # W&B's service process may have another working directory
            "id": self._id,
            "resume": "allow",
            "anonymous": "allow" if anonymous else None,
            **kwargs,
        }
        if offline:
            self._init["mode"] = "offline"

    # ------------------------------------------------------------ the run
    def _create_experiment(self) -> Run:
        """``logger.experiment``: the ``wandb`` run, started now (or the one already running)."""
        import wandb

        if wandb.run is not None:
            rank_zero_warn(
                "WandbLogger logs into the wandb run already started; call wandb.finish() first for a new one",
                EmberWarning,
            )
            run = wandb.run
        else:
            os.makedirs(self._save_dir, exist_ok=True)
            run = wandb.init(**{key: value for key, value in self._init.items() if value is not None})
        run.define_metric(STEP_METRIC)
        run.define_metric("*", step_metric=STEP_METRIC, step_sync=True)
        return run

    @property
    def name(self) -> str | None:
        """The W&B project, as in Lightning."""
        return self._experiment.project if self._experiment is not None else self._project

    @property
    def version(self) -> str | None:
        """The run id (the run starts on first use)."""
        return self._experiment.id if self._experiment is not None else self._id

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    # ------------------------------------------------------------ logging
    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace | None, *args: Any, **kwargs: Any) -> None:
        """Add the hyperparameters to the run's config (callables as their names)."""
        self.experiment.config.update(_config_values(as_params(params)), allow_val_change=True)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log ``metrics`` with ``trainer/global_step`` = ``step``, the x-axis every metric is plotted against."""
        prefix = f"{self._prefix}{self.LOGGER_JOIN_CHAR}" if self._prefix else ""
        row = {f"{prefix}{key}": _number(value) for key, value in metrics.items()}
        if step is not None:
            row[STEP_METRIC] = step
        self.experiment.log(row)

    @rank_zero_only
    def log_image(self, key: str, images: list[Any], step: int | None = None, **kwargs: Any) -> None:
        """Log a list of images (tensors, arrays, PIL images or paths); list-valued ``kwargs`` such as ``caption``."""
        self._log_media("Image", key, images, step, kwargs)

    @rank_zero_only
    def log_audio(self, key: str, audios: list[Any], step: int | None = None, **kwargs: Any) -> None:
        """Log a list of audio clips; ``sample_rate`` and ``caption`` as lists, one per clip."""
        self._log_media("Audio", key, audios, step, kwargs)

    @rank_zero_only
    def log_video(self, key: str, videos: list[Any], step: int | None = None, **kwargs: Any) -> None:
        """Log a list of videos; ``caption``, ``fps`` and ``format`` as lists, one per video."""
        self._log_media("Video", key, videos, step, kwargs)

    @rank_zero_only
    def log_table(
        self,
        key: str,
        columns: list[Any] | None = None,
        data: list[list[Any]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """Log a table, from ``columns`` and rows of ``data``, or from a pandas ``dataframe``."""
        import wandb

        self.log_metrics({key: wandb.Table(columns=columns, data=data, dataframe=dataframe)}, step)

    log_text = log_table  # Lightning's log_text takes the same arguments

    def _log_media(self, kind: str, key: str, items: list[Any], step: int | None, kwargs: dict[str, Any]) -> None:
        import wandb

        if not isinstance(items, list):
            raise TypeError(f"WandbLogger.log_{kind.lower()}({key!r}, ...) takes a list, not a {type(items).__name__}")
        for option, values in kwargs.items():
            if len(values) != len(items):
                raise ValueError(f"{option} has {len(values)} entries for {len(items)} items; give one per item")
        media = getattr(wandb, kind)
        logged = [media(item, **{option: kwargs[option][i] for option in kwargs}) for i, item in enumerate(items)]
        self.log_metrics({key: logged}, step)

    # ------------------------------------------------------------ checkpoints
    @rank_zero_only
    def finalize(self, status: str) -> None:
        """After a successful run, upload the checkpoints still due. The run stays open, as in Lightning."""
        if status == "success" and self._experiment is not None and self._models.log_model:
            self._upload_checkpoints()

    def _upload_checkpoints(self) -> None:
        import wandb

        callback = self._models.checkpoint_callback
        for checkpoint in self._models.pending():
            artifact = wandb.Artifact(
                name=self._checkpoint_name or f"model-{self.experiment.id}",
                type="model",
                metadata=checkpoint.metadata(callback),
            )
            artifact.add_file(checkpoint.path, name="model.ckpt", policy=self._add_file_policy)
            self.experiment.log_artifact(artifact, aliases=list(checkpoint.aliases))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_experiment"] = None  # a run cannot be pickled; a spawned rank 0 starts or joins it by id
        if self._experiment is not None:
            state["_id"] = state["_init"]["id"] = self._experiment.id
        return state


def _config_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameters W&B's config can hold: callables and classes by name, nested mappings kept."""
    values: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, Mapping):
            values[str(key)] = _config_values(value)
        elif callable(value):
            values[str(key)] = getattr(value, "__name__", repr(value))
        else:
            values[str(key)] = value.tolist() if hasattr(value, "tolist") else value  # tensors, NumPy values
    return values
