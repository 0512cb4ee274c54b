"""CSVLogger: metrics.csv and hparams.yaml under ``save_dir/name/version_N``.

It needs nothing beyond the standard library (and PyYAML for hparams.yaml),
so every run leaves a log that a spreadsheet or pandas can read. The files
are written by :class:`ExperimentWriter`, which is ``logger.experiment`` as in
Lightning. Rows are buffered and written every ``flush_logs_every_n_steps``
rows, at every checkpoint and when the run ends; a metric that first appears
mid-run adds a column, and the file is rewritten once with the full header.
"""

from __future__ import annotations

import csv
import os
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from ember.core import filesystem
from ember.core.rank import rank_zero_only, rank_zero_warn
from ember.errors import EmberWarning
from ember.loggers.base import FileLogger, _number, as_params, save_hparams_yaml


class ExperimentWriter:
    """Buffers metric rows and hyperparameters; :meth:`save` writes them to ``log_dir``.

    What ``CSVLogger.experiment`` is, with Lightning's methods (``log_metrics``,
    ``log_hparams``, ``save``), so code that writes through it directly ports.

    :param log_dir: the folder metrics.csv and hparams.yaml go in (created on the first save).
    """

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = os.fspath(log_dir)
        #: Rows waiting to be written.
        self.metrics: list[dict[str, Any]] = []
        #: The columns of metrics.csv, sorted.
        self.metrics_keys: list[str] = []
        #: Every hyperparameter logged so far.
        self.hparams: dict[str, Any] = {}
        self.rows_logged = 0
        self._file_started = False
        self._keep_rows: int | None = None

    @property
    def metrics_file_path(self) -> str:
        return filesystem.join(self.log_dir, self.NAME_METRICS_FILE)

    def log_hparams(self, params: Mapping[str, Any] | Namespace | None) -> None:
        """Merge ``params`` into :attr:`hparams` and rewrite hparams.yaml at once (it is small)."""
        self.hparams.update(as_params(params))
        save_hparams_yaml(filesystem.join(self.log_dir, self.NAME_HPARAMS_FILE), self.hparams)

    def log_metrics(self, metrics_dict: Mapping[str, Any], step: int | None = None) -> None:
        """Buffer one row: the metrics, as numbers, and ``step`` (the row's number when None)."""
        row = {key: _number(value) for key, value in metrics_dict.items()}
        row["step"] = self.rows_logged if step is None else step
        self.metrics.append(row)
        self.rows_logged += 1

    def continue_after(self, rows: int) -> None:
        """Continue this folder's metrics.csv (a resumed run): its first ``rows`` rows predate the checkpoint.

        Rows written after the checkpoint are kept up to the first step the resumed run logs again, so a
        crash between a checkpoint and the next flush loses no row and the resumed run adds no duplicate.
        """
        self._keep_rows = rows
        self.rows_logged = rows

    def save(self) -> None:
        """Write the buffered rows: appended, or the whole file rewritten when a column is new or rows are dropped."""
        if not self.metrics:
            return
        filesystem.makedirs(self.log_dir)
        path = self.metrics_file_path
        earlier: list[dict[str, Any]] = []
        rewrite = not self._file_started
        if not self._file_started and filesystem.isfile(path):
            if self._keep_rows is None:
                rank_zero_warn(f"CSVLogger: {path} exists from an earlier run and is overwritten", EmberWarning)
            else:
                earlier = self._rows_before_resumed_ones(path, self._keep_rows)
        keys = set().union(*self.metrics)
        new_columns = keys.difference(self.metrics_keys)
        if new_columns:
            self.metrics_keys = sorted(new_columns.union(self.metrics_keys))
            if self._file_started:
                with filesystem.open_file(path, "r", newline="") as handle:
                    earlier = list(csv.DictReader(handle))
                rewrite = True
        with filesystem.open_file(path, "w" if rewrite else "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
            if rewrite:
                writer.writeheader()
                writer.writerows(earlier)
            writer.writerows(self.metrics)
        self._file_started = True
        self.metrics = []

    def _rows_before_resumed_ones(self, path: str, kept: int) -> list[dict[str, Any]]:
        """The file's first ``kept`` rows, then its later rows of steps before the first one logged again."""
        with filesystem.open_file(path, "r", newline="") as handle:
            reader = csv.DictReader(handle)
            self.metrics_keys = list(reader.fieldnames or [])
            rows = list(reader)
        trainer_rows = [row for row in self.metrics if row.get("epoch") is not None] or self.metrics
        first_again = min(int(row["step"]) for row in trainer_rows)
        later = [row for row in rows[kept:] if not row.get("epoch") or int(float(row["step"])) < first_again]
        return rows[:kept] + later


class CSVLogger(FileLogger):
    """Write one CSV row per ``log_metrics`` call, with a column per metric name, and hparams.yaml.

    :param save_dir: the folder experiment folders go in.
    :param name: the experiment folder; ``None`` or ``""`` puts versions straight into ``save_dir``.
    :param version: an int (folder ``version_N``) or a folder name; the next free number when None.
    :param prefix: put before every metric name, joined with "-".
    :param flush_logs_every_n_steps: write buffered rows once this many are waiting.
    """

    NAME_METRICS_FILE = ExperimentWriter.NAME_METRICS_FILE

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "ember_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        super().__init__(save_dir, name, version, prefix)
        self._flush_every = max(int(flush_logs_every_n_steps), 1)

    def _create_experiment(self) -> ExperimentWriter:
        """``logger.experiment``: the :class:`ExperimentWriter` that holds and writes this run's rows."""
        writer = ExperimentWriter(self.log_dir)
        writer.hparams = self.hparams
        return writer

    @property
    def metrics_file_path(self) -> str:
        """``log_dir/metrics.csv``."""
        return filesystem.join(self.log_dir, self.NAME_METRICS_FILE)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Buffer one row: the metrics (prefixed) and ``step`` (the row's number when None)."""
        self.experiment.log_metrics(self._prefixed(metrics), step)
        if len(self.experiment.metrics) >= self._flush_every:
            self.save()

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace | None = None, *args: Any, **kwargs: Any) -> None:
        """Merge ``params`` into :attr:`hparams` and rewrite ``log_dir/hparams.yaml``."""
        self.experiment.log_hparams(params)

    @rank_zero_only
    def save(self) -> None:
        """Write the buffered rows to metrics.csv."""
        if self._experiment is not None:
            self._experiment.save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Write whatever is still buffered."""
        self.save()

    def state_dict(self) -> dict[str, Any]:
        """Name, version and the number of rows logged; the rows are written first, so the file holds them."""
        self.save()
        rows = self._experiment.rows_logged if self._experiment is not None else 0
        return {**super().state_dict(), "rows": rows}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """On resume into the same version folder, continue its metrics.csv after the checkpoint's rows."""
        if rank_zero_only.rank != 0 or "rows" not in state:  # type: ignore[attr-defined]
            return
        if state.get("name") == self.name and state.get("version") == self.version:
            self.experiment.continue_after(int(state["rows"]))
