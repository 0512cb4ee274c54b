"""TensorBoardLogger: real TensorBoard event files under ``save_dir/name/version_N``.

It writes through ``torch.utils.tensorboard.SummaryWriter``, which needs the
``tensorboard`` package and not TensorFlow. The writer (and the tensorboard
import, which is slow) is created on first use, on global rank 0 only.
hparams.yaml goes next to the event file, as the CSV logger writes it.

A fit resumed from a checkpoint into the same version folder starts its
event file with TensorBoard's own restart marker (``purge_step``, a
``SessionLog.START`` event), so readers drop what the cut-short attempt
wrote after the checkpoint and show each scalar once.
"""

from __future__ import annotations

import os
import warnings
from argparse import Namespace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ember.core import filesystem
from ember.core.rank import rank_zero_only, rank_zero_warn
from ember.errors import EmberWarning
from ember.loggers.base import FileLogger, flatten_params, save_hparams_yaml

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.tensorboard import SummaryWriter


#: URL protocols TensorBoard's own file layer writes to.
TENSORBOARD_PROTOCOLS = ("s3", "gs", "hdfs")


def writes_to(save_dir: str | os.PathLike[str]) -> bool:
    """Whether TensorBoard can write event files under ``save_dir``: a local folder or one of its protocols."""
    text = filesystem.normalize(save_dir)
    return not filesystem.is_remote(text) or text.split("://", 1)[0] in TENSORBOARD_PROTOCOLS


class TensorBoardLogger(FileLogger):
    """Log scalars, hyperparameters and the model graph in TensorBoard's format.

    :param save_dir: the folder experiment folders go in.
    :param name: the experiment folder; ``None`` or ``""`` puts versions straight into ``save_dir``.
    :param version: an int (folder ``version_N``) or a folder name; the next free number when None.
    :param log_graph: whether ``log_graph`` (called when fit starts) adds the model's graph; it traces
        the model with ``model.example_input_array``.
    :param default_hp_metric: log ``hp_metric = -1`` with the hyperparameters when no metric is given, so
        TensorBoard's HPARAMS tab shows the run; log the real ``hp_metric`` later with ``self.log``.
    :param prefix: put before every metric name, joined with "-".
    :param sub_dir: a folder inside the version folder for the event files.
    :param summary_writer_kwargs: passed on to ``SummaryWriter`` (e.g. ``max_queue``, ``flush_secs``).
    """

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "ember_logs",
        version: int | str | None = None,
        log_graph: bool = False,
        default_hp_metric: bool = True,
        prefix: str = "",
        sub_dir: str | os.PathLike[str] | None = None,
        **summary_writer_kwargs: Any,
    ) -> None:
        if not writes_to(save_dir):
            raise ValueError(
                f"TensorBoardLogger(save_dir={os.fspath(save_dir)!r}): TensorBoard writes event files only to local "
                f"folders and {', '.join(p + '://' for p in TENSORBOARD_PROTOCOLS)} URLs; use CSVLogger for this URL"
            )
        super().__init__(save_dir, name, version, prefix)
        self._log_graph = log_graph
        self._default_hp_metric = default_hp_metric
        self._sub_dir = None if sub_dir is None else os.fspath(sub_dir)
        self._kwargs = summary_writer_kwargs
        # the highest step logged so far and the scalars logged at it, as [tag, value] pairs; a checkpoint keeps it
        self._latest: tuple[int, list[list[Any]]] | None = None
        self._restored: tuple[int, list[list[Any]]] | None = None  # _latest as a checkpoint of this folder had it
        self._resume: tuple[int, list[list[Any]]] | None = None  # the same, from after_resume to the first log
        self._purge_step: int | None = None  # for the next SummaryWriter

    @property
    def sub_dir(self) -> str | None:
        return self._sub_dir

    @property
    def log_dir(self) -> str:
        """``save_dir/name/version_N[/sub_dir]``, with ``~`` and environment variables expanded."""
        folder = super().log_dir
        assert folder is not None
        if self._sub_dir is not None:
            folder = os.path.join(folder, self._sub_dir)
        return os.path.expanduser(os.path.expandvars(folder))

    def _create_experiment(self) -> SummaryWriter:
        """``logger.experiment``: the ``SummaryWriter``, for anything beyond scalars (``add_histogram(...)``)."""
        from torch.utils.tensorboard import SummaryWriter

        kwargs = self._kwargs if self._purge_step is None else {**self._kwargs, "purge_step": self._purge_step}
        self._purge_step = None
        return SummaryWriter(log_dir=self.log_dir, **kwargs)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """One scalar per metric at ``step``; a dict value becomes a group of scalars (``add_scalars``)."""
        at = step or 0  # where TensorBoard puts it
        if self._resume is not None:
            self._start_again(at)
        for key, value in self._prefixed(metrics).items():
            if isinstance(value, Mapping):
                self.experiment.add_scalars(key, dict(value), step)
                continue
            try:
                self.experiment.add_scalar(key, value, step)
            except Exception as error:
                raise ValueError(
                    f"TensorBoardLogger cannot log {key}={value!r} ({type(value).__name__}); "
                    "accepted are numbers, one-element tensors and dicts of numbers"
                ) from error
            if self._latest is None or at > self._latest[0]:
                self._latest = (at, [])
            if at == self._latest[0]:
                self._latest[1].append([key, value])

    def _start_again(self, step: int) -> None:
        """The resumed fit's first log is at ``step``: readers are to drop the folder's events from ``step`` on.

        A new event file starts with ``purge_step=step``: TensorBoard's readers then discard the events
        of earlier files at ``step`` or later, which the cut-short attempt logged after the checkpoint and
        this run logs again. Nothing is logged before ``step`` again (not ``hp_metric``: see
        :meth:`log_hyperparams`). What the checkpoint's attempt had logged at its latest step, if that is
        ``step``, is written again, so that the purge does not take it.
        """
        latest, self._resume = self._resume, None
        assert latest is not None
        if self._experiment is not None:  # made before the resume: the next use opens a new file, with the purge
            self._experiment.close()
            self._experiment = None
        self._purge_step = step
        self._latest = (latest[0], list(latest[1]))
        if latest[0] >= step:
            for key, value in latest[1]:
                self.experiment.add_scalar(key, value, latest[0])

    @rank_zero_only
    def log_hyperparams(
        self,
        params: Mapping[str, Any] | Namespace | None,
        metrics: Mapping[str, Any] | float | None = None,
        step: int | None = None,
    ) -> None:
        """Record hyperparameters for the HPARAMS tab and hparams.yaml.

        Without ``metrics``, ``hp_metric = -1`` is logged when ``default_hp_metric`` is on (otherwise
        the HPARAMS tab gets nothing); a bare number is taken as ``hp_metric``.
        """
        params = self._record_hparams(params)
        if metrics is None and self._resume is not None:
            return  # a resumed fit: its first attempt wrote them into this folder's event files
        if metrics is None:
            metrics = {"hp_metric": -1} if self._default_hp_metric else None
        elif not isinstance(metrics, Mapping):
            metrics = {"hp_metric": metrics}
        if not metrics:
            return
        from torch.utils.tensorboard.summary import hparams

        self.log_metrics(metrics, step)
        flat = _sanitize(flatten_params(params))
        writer = self.experiment._get_file_writer()
        for summary in hparams(flat, dict(metrics)):
            writer.add_summary(summary, step)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Trace ``model`` on ``input_array`` (default ``model.example_input_array``) and add its graph.

        Does nothing unless the logger was made with ``log_graph=True``.
        """
        if not self._log_graph:
            return
        import torch

        if input_array is None:
            input_array = getattr(model, "example_input_array", None)
        if input_array is None:
            rank_zero_warn(
                "TensorBoardLogger(log_graph=True) could not log the graph: set model.example_input_array "
                "or pass input_array",
                EmberWarning,
            )
            return
        if not isinstance(input_array, (torch.Tensor, tuple)):
            rank_zero_warn(
                f"TensorBoardLogger(log_graph=True) could not log the graph: the input is a "
                f"{type(input_array).__name__}; give a tensor, or a tuple of forward()'s positional arguments",
                EmberWarning,
            )
            return
        input_array = _to_model_device(model, input_array)
        with warnings.catch_warnings():  # add_graph traces with torch.jit, which torch marks deprecated
            warnings.filterwarnings("ignore", r".*torch\.jit\.trace", DeprecationWarning)
            self.experiment.add_graph(model, input_array)

    @rank_zero_only
    def save(self) -> None:
        """Flush the event file; write hparams.yaml if the version folder exists and it is missing."""
        if self._experiment is not None:
            self._experiment.flush()
        if os.path.isdir(self.log_dir) and not os.path.isfile(self.hparams_file_path):
            save_hparams_yaml(self.hparams_file_path, self.hparams)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Write hparams.yaml after a successful run; flush and close the event file (a later log opens a new one)."""
        if status == "success":
            self.save()
        if self._experiment is not None:
            self._experiment.flush()
            self._experiment.close()

    def state_dict(self) -> dict[str, Any]:
        """Name, version and the latest step's scalars; the event file is flushed first, so it holds what the
        checkpoint covers."""
        self.save()
        if self._latest is None:
            return super().state_dict()
        return {**super().state_dict(), "latest_step": self._latest[0], "latest_scalars": list(self._latest[1])}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Keep the latest step's scalars of a checkpoint written while logging into this logger's folder."""
        self._restored = None
        if rank_zero_only.rank != 0 or "latest_step" not in state:  # type: ignore[attr-defined]
            return
        if state.get("name") == self.name and state.get("version") == self.version:
            self._restored = (int(state["latest_step"]), [list(pair) for pair in state["latest_scalars"]])

    def after_resume(self) -> None:
        """Fit continues from the checkpoint :meth:`load_state_dict` read: its first log hides what came after it."""
        self._resume, self._restored = self._restored, None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_experiment"] = None
        return state


def _to_model_device(model: Any, input_array: Any) -> Any:
    """The input after the model's batch-transfer hooks, on the model's device, as training batches are."""
    import torch

    device = getattr(model, "device", None)
    if not isinstance(device, torch.device):
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if callable(getattr(model, "on_before_batch_transfer", None)):
        input_array = model.on_before_batch_transfer(input_array, 0)
        input_array = model.transfer_batch_to_device(input_array, device, 0)
        return model.on_after_batch_transfer(input_array, 0)
    if isinstance(input_array, tuple):
        return tuple(item.to(device) if isinstance(item, torch.Tensor) else item for item in input_array)
    return input_array.to(device)


def _sanitize(params: dict[str, Any]) -> dict[str, Any]:
    """Values TensorBoard's hparams accept: numbers, strings, bools and tensors; anything else as its str."""
    import torch

    sane: dict[str, Any] = {}
    for key, value in params.items():
        item = getattr(value, "item", None)
        if not isinstance(value, torch.Tensor) and callable(item) and getattr(value, "ndim", None) == 0:
            value = item()  # numpy scalars
        if isinstance(value, torch.Tensor) and value.ndim > 1:
            value = str(value)
        elif type(value) not in (bool, int, float, str, torch.Tensor):
            value = str(value)
        sane[key] = value
    return sane
