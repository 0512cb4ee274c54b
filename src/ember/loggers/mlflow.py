"""MLFlowLogger: metrics, hyperparameters and checkpoints in an MLflow tracking store.

Lightning's arguments and behaviour, behind the ``ember[mlflow]`` extra
(``mlflow-skinny`` plus SQLAlchemy for a local SQLite store). mlflow is
imported when the run is first needed, on global rank 0 only.

One difference: without ``tracking_uri`` (and without ``MLFLOW_TRACKING_URI``)
Lightning falls back to the file store ``file:<save_dir>``, which MLflow 3
refuses by default; ember falls back to ``sqlite:///<save_dir>/mlflow.db``
with artifacts in ``<save_dir>/artifacts``, which MLflow recommends instead.
"""

from __future__ import annotations

import os
import re
import time
from argparse import Namespace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ember.core.rank import rank_zero_only, rank_zero_warn
from ember.errors import EmberWarning
from ember.loggers.base import Logger, _number, as_params, flatten_params, require
from ember.loggers.model_logging import ModelLogging, UploadsCheckpoints

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.tracking import MlflowClient

_STATUS = {"success": "FINISHED", "finished": "FINISHED", "failed": "FAILED", "preempted": "KILLED"}
_FILE = "file:"


class MLFlowLogger(UploadsCheckpoints, Logger):
    """Log to an MLflow tracking store: local (SQLite or files) or a tracking server.

    :param experiment_name: the MLflow experiment, created when missing.
    :param run_name: the run's display name (the ``mlflow.runName`` tag).
    :param tracking_uri: where the store is (``sqlite:///...``, ``file:...``, ``http://...``); default
        ``MLFLOW_TRACKING_URI``, else a SQLite store in ``save_dir``.
    :param tags: tags of the run.
    :param save_dir: the local folder used when no tracking URI is given.
    :param log_model: upload checkpoints as artifacts: ``"all"`` as they are saved, ``True`` when the
        run ends (every one as it is saved with ``save_top_k=-1``), ``False`` none.
    :param checkpoint_path_prefix: the artifact folder checkpoints go under.
    :param prefix: put before every metric name, joined with "-".
    :param artifact_location: where a newly created experiment keeps its artifacts.
    :param run_id: log into this existing run instead of starting one (to resume).
    :param synchronous: passed to MLflow's ``log_batch``; None keeps MLflow's default.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        experiment_name: str = "ember_logs",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: Mapping[str, Any] | None = None,
        save_dir: str | os.PathLike[str] | None = "./mlruns",
        log_model: bool | str = False,
        checkpoint_path_prefix: str = "",
        prefix: str = "",
        artifact_location: str | None = None,
        run_id: str | None = None,
        synchronous: bool | None = None,
    ) -> None:
        require("mlflow", "mlflow", "MLFlowLogger")
        self._experiment_name = experiment_name
        self._run_name = run_name
        self._save_dir = None if save_dir is None else os.fspath(save_dir)
        tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not tracking_uri:
            if self._save_dir is None:
                raise ValueError("MLFlowLogger needs a tracking_uri or a save_dir; both are None")
            folder = os.path.abspath(self._save_dir)
            tracking_uri = f"sqlite:///{os.path.join(folder, 'mlflow.db')}"
            artifact_location = artifact_location or os.path.join(folder, "artifacts")
        self._tracking_uri = tracking_uri
        self._tags = dict(tags or {})
        self._models = ModelLogging(log_model)
        self._checkpoint_path_prefix = checkpoint_path_prefix
        self._prefix = prefix
        self._artifact_location = artifact_location
        self._run_id = run_id
        self._experiment_id: str | None = None
        self._synchronous = synchronous

    # ------------------------------------------------------------ the run
    def _create_experiment(self) -> MlflowClient:
        """``logger.experiment``: the ``MlflowClient``, with the run started (``log_artifact(logger.run_id, path)``)."""
        from mlflow.tracking import MlflowClient

        if self._tracking_uri.startswith("sqlite:///"):
            os.makedirs(os.path.dirname(self._tracking_uri[len("sqlite:///") :]) or ".", exist_ok=True)
        client = MlflowClient(tracking_uri=self._tracking_uri)
        if self._run_id is not None:
            self._experiment_id = client.get_run(self._run_id).info.experiment_id
        else:
            found = client.get_experiment_by_name(self._experiment_name)
            if found is None:
                self._experiment_id = client.create_experiment(
                    self._experiment_name, artifact_location=self._artifact_location
                )
            else:
                self._experiment_id = found.experiment_id
            tags = dict(self._tags)
            if self._run_name is not None:
                tags["mlflow.runName"] = self._run_name
            self._run_id = client.create_run(self._experiment_id, tags=tags).info.run_id
        return client

    @property
    def run_id(self) -> str | None:
        """The MLflow run's id (the run starts on first use)."""
        self.experiment  # noqa: B018 - starts the run
        return self._run_id

    def _active_run(self) -> str:
        """The run's id, for calls that need one (rank 0, where the run exists)."""
        self.experiment  # noqa: B018 - starts the run
        return str(self._run_id)

    @property
    def experiment_id(self) -> str | None:
        """The MLflow experiment's id."""
        self.experiment  # noqa: B018 - starts the run
        return self._experiment_id

    @property
    def name(self) -> str | None:
        """The experiment's id, as in Lightning."""
        return self.experiment_id

    @property
    def version(self) -> str | None:
        """The run's id, as in Lightning."""
        return self.run_id

    @property
    def save_dir(self) -> str | None:
        """The local folder of a file store, or of the default SQLite store; None for a server."""
        if self._tracking_uri.startswith(_FILE):
            return self._tracking_uri[len(_FILE) :]
        if self._save_dir is not None and self._tracking_uri.startswith("sqlite:///"):
            return self._save_dir
        return None

    # ------------------------------------------------------------ logging
    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace | None, *args: Any, **kwargs: Any) -> None:
        """Nested hyperparameters as ``a/b`` params, values as strings (cut at MLflow's length limit)."""
        from mlflow.entities import Param

        limit = _param_length_limit()
        flat = flatten_params(as_params(params))
        items = [Param(key, str(value)[:limit]) for key, value in flat.items()]
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params
            self.experiment.log_batch(run_id=self._active_run(), params=items[start : start + 100])

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """One MLflow metric per name at ``step``; names lose characters MLflow rejects, strings are skipped."""
        from mlflow.entities import Metric

        prefix = f"{self._prefix}{self.LOGGER_JOIN_CHAR}" if self._prefix else ""
        stamp = int(time.time() * 1000)
        entries = []
        for key, value in metrics.items():
            value = _number(value)
            if isinstance(value, str):
                rank_zero_warn(f"MLFlowLogger skips {key}={value!r}: MLflow metrics are numbers", EmberWarning)
                continue
            name = re.sub(r"[^a-zA-Z0-9_/. :-]+", "", f"{prefix}{key}")
            if name != f"{prefix}{key}":
                rank_zero_warn(f"MLFlowLogger logs {prefix}{key!r} as {name!r}: MLflow rejects the rest", EmberWarning)
            entries.append(Metric(key=name, value=float(value), timestamp=stamp, step=step or 0))
        if self._synchronous is None:
            self.experiment.log_batch(run_id=self._active_run(), metrics=entries)
        else:
            self.experiment.log_batch(run_id=self._active_run(), metrics=entries, synchronous=self._synchronous)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Upload the checkpoints still due, then end the run (FINISHED, FAILED or KILLED)."""
        if self._experiment is None:
            return
        if status == "success" and self._models.log_model:
            self._upload_checkpoints()
        self._experiment.set_terminated(self._active_run(), _STATUS.get(status, status.upper()))

    def _upload_checkpoints(self) -> None:
        import tempfile  # here, not at the top: `ember plugins list` imports this module (15 ms)

        import yaml

        callback = self._models.checkpoint_callback
        for checkpoint in self._models.pending():
            folder = os.path.join(self._checkpoint_path_prefix, os.path.splitext(os.path.basename(checkpoint.path))[0])
            self.experiment.log_artifact(self._active_run(), checkpoint.path, folder)
            with tempfile.TemporaryDirectory() as scratch:
                with open(os.path.join(scratch, "metadata.yaml"), "w") as handle:
                    yaml.safe_dump(checkpoint.metadata(callback), handle)
                with open(os.path.join(scratch, "aliases.txt"), "w") as handle:
                    handle.write(str(list(checkpoint.aliases)))
                self.experiment.log_artifacts(self._active_run(), scratch, folder)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_experiment"] = None
        return state


def _param_length_limit() -> int:
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:  # pragma: no cover - older MLflow
        return 250
    return int(MAX_PARAM_VAL_LENGTH)
