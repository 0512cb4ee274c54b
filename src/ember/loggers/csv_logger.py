"""CSVLogger: metrics.csv and hparams.yaml under ``save_dir/name/version_N``, no dependencies."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ember.loggers.base import Logger


class CSVLogger(Logger):
    """Write one CSV row per logging step, a column per metric, and hparams.yaml.

    :param save_dir: the folder the experiment folders go in.
    :param name: the experiment folder ("ember_logs").
    :param version: an int (``version_N``) or a folder name; the next free number when None.
    :param prefix: prepended to every metric name, joined with "-".
    :param flush_logs_every_n_steps: rows are written to disk at least this often.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike[str] = ".",
        name: str | None = "ember_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._prefix = prefix
        self._flush_every = flush_logs_every_n_steps
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = []
        self._written = 0
        self.hparams: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def version(self) -> int | str:
        if self._version is None:
            self._version = _next_version(Path(self._save_dir) / self._name)
        return self._version

    @property
    def metrics_file_path(self) -> str:
        return str(Path(self.log_dir) / "metrics.csv")  # type: ignore[arg-type]

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        row = {(f"{self._prefix}-{key}" if self._prefix else key): value for key, value in metrics.items()}
        if step is not None:
            row["step"] = step
        self._rows.append(row)
        if len(self._rows) - self._written >= self._flush_every:
            self.save()

    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        self.hparams.update(params)
        self._write_hparams()

    def save(self) -> None:
        """Append new rows; rewrite the file when a new column appeared."""
        if self._written == len(self._rows):
            return
        folder = Path(self.log_dir)  # type: ignore[arg-type]
        folder.mkdir(parents=True, exist_ok=True)
        keys = {key for row in self._rows[self._written :] for key in row}
        new_columns = sorted(keys - set(self._columns))
        if new_columns or not Path(self.metrics_file_path).exists():
            self._columns = sorted(set(self._columns) | keys)
            rows, mode = self._rows, "w"
        else:
            rows, mode = self._rows[self._written :], "a"
        with open(self.metrics_file_path, mode, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._columns)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)
        self._written = len(self._rows)

    def _write_hparams(self) -> None:
        import yaml

        folder = Path(self.log_dir)  # type: ignore[arg-type]
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "hparams.yaml", "w") as handle:
            yaml.safe_dump(_plain(self.hparams), handle, sort_keys=False)


def _next_version(root: Path) -> int:
    versions = [
        int(entry.name.split("_", 1)[1])
        for entry in (root.iterdir() if root.is_dir() else [])
        if entry.is_dir() and entry.name.startswith("version_") and entry.name.split("_", 1)[1].isdigit()
    ]
    return max(versions) + 1 if versions else 0


def _plain(value: Any) -> Any:
    """``value`` with everything YAML cannot hold safely turned into its repr."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
