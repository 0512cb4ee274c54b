"""CSVLogger, the default logger: metrics.csv and hparams.yaml under ``save_dir/name/version_N``.

It needs nothing beyond the standard library (and PyYAML for hparams.yaml),
so every run leaves a log that a spreadsheet or pandas can read. Rows are
buffered and written every ``flush_logs_every_n_steps`` rows and when the
run ends; a metric that first appears mid-run adds a column, and the file is
rewritten once with the full header.
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
from ember.loggers.base import FileLogger


class CSVLogger(FileLogger):
    """Write one CSV row per ``log_metrics`` call, with a column per metric name, and hparams.yaml.

    :param save_dir: the folder experiment folders go in (the Trainer's default logger uses default_root_dir).
    :param name: the experiment folder; ``None`` or ``""`` puts versions straight into ``save_dir``.
    :param version: an int (folder ``version_N``) or a folder name; the next free number when None.
    :param prefix: put before every metric name, joined with "-".
    :param flush_logs_every_n_steps: write buffered rows once this many are waiting.
    """

    NAME_METRICS_FILE = "metrics.csv"

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
        self._buffer: list[dict[str, Any]] = []
        self._columns: list[str] = []
        self._rows_logged = 0
        self._file_started = False

    @property
    def metrics_file_path(self) -> str:
        """``log_dir/metrics.csv``."""
        return os.path.join(self.log_dir, self.NAME_METRICS_FILE)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Buffer one row: the metrics (prefixed) and ``step`` (the row's number when None)."""
        row = self._prefixed(metrics)
        row["step"] = self._rows_logged if step is None else step
        self._buffer.append(row)
        self._rows_logged += 1
        if len(self._buffer) >= self._flush_every:
            self.save()

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace | None = None, *args: Any, **kwargs: Any) -> None:
        """Merge ``params`` into :attr:`hparams` and rewrite ``log_dir/hparams.yaml``."""
        self._record_hparams(params)

    @rank_zero_only
    def save(self) -> None:
        """Write the buffered rows: appended, or the whole file rewritten when a new column appeared."""
        if not self._buffer:
            return
        filesystem.makedirs(self.log_dir)
        path = self.metrics_file_path
        keys = set().union(*self._buffer)
        new_columns = keys.difference(self._columns)
        if new_columns:
            self._columns = sorted(new_columns.union(self._columns))
        rows = self._buffer
        if not self._file_started:
            if filesystem.isfile(path):
                rank_zero_warn(f"CSVLogger: {path} exists from an earlier run and is overwritten", EmberWarning)
            mode = "w"
        elif new_columns:
            with filesystem.open_file(path, "r", newline="") as handle:
                rows = [*csv.DictReader(handle), *rows]
            mode = "w"
        else:
            mode = "a"
        with filesystem.open_file(path, mode, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._columns)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)
        self._file_started = True
        self._buffer = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Write whatever is still buffered."""
        self.save()
