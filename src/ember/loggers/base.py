"""The Logger base class third parties subclass to send metrics somewhere new.

A logger needs a ``name``, a ``version``, ``log_metrics`` and
``log_hyperparams``; everything else has a default. The Trainer calls its
loggers from global rank 0 only: ``log_hyperparams`` (and ``log_graph``)
when a run starts, ``log_metrics`` with floats and the step index while it
runs, ``save`` now and then, and ``finalize`` once with "success" or
"failed"; a fit that resumes from a checkpoint calls ``after_resume`` before
it logs. Loggers that write files decorate their writing methods with
:func:`ember.rank_zero_only` as well, so they are safe outside a Trainer.
A logger with a backend object of its own (a writer, a client, a run)
makes it in ``_create_experiment``; :attr:`Logger.experiment` makes it on
first use, on global rank 0 only.

A Logger is not a Callback, and it defines no hook name, so one object may
be both (subclass both) and be registered as a plugin as well.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from argparse import Namespace
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, is_dataclass
from typing import Any

from ember.core import filesystem
from ember.core.rank import rank_zero_only


class Logger(ABC):
    """Base class of ember's loggers: where logged metrics and hyperparameters go.

    ``log_dir`` (``save_dir/name/version_N``) is where the run's files go;
    ``trainer.log_dir`` is the first logger's, and ModelCheckpoint saves
    under its ``checkpoints`` folder.
    """

    #: The backend's object once :attr:`experiment` made it; a subclass may set it up front.
    _experiment: Any = None

    @property
    def experiment(self) -> Any:
        """The backend's own object, for what the Logger methods do not cover; made on first use.

        Only global rank 0 makes it (starting a run, opening a file); other ranks get a
        stand-in whose methods do nothing, so code that calls it needs no rank check.
        """
        if self._experiment is None:
            if rank_zero_only.rank != 0:  # type: ignore[attr-defined]
                return DummyExperiment()
            self._experiment = self._create_experiment()
        return self._experiment

    def _create_experiment(self) -> Any:
        """Make the backend's object (called once, on global rank 0); loggers that have one override this."""
        raise AttributeError(f"{type(self).__qualname__} has no experiment")

    @property
    @abstractmethod
    def name(self) -> str | None:
        """The experiment's name (a folder under ``save_dir`` for file loggers)."""

    @property
    @abstractmethod
    def version(self) -> int | str | None:
        """The run's version (``version_N`` folders for file loggers)."""

    @property
    def save_dir(self) -> str | None:
        """Where this logger writes, if it writes files."""
        return None

    @property
    def root_dir(self) -> str | None:
        """``save_dir/name``: the experiment's folder, holding one folder per version."""
        if self.save_dir is None:
            return None
        return os.path.join(self.save_dir, self.name or "")

    @property
    def log_dir(self) -> str | None:
        """``save_dir/name/version_N`` (or ``save_dir/name/VERSION`` for a string version): this run's folder."""
        if self.root_dir is None:
            return None
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        return os.path.join(self.root_dir, version)

    @abstractmethod
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record ``metrics`` (names to numbers) at ``step``."""

    @abstractmethod
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace | None, *args: Any, **kwargs: Any) -> None:
        """Record the run's hyperparameters."""

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Record the model's graph, where the backend supports it."""

    def save(self) -> None:
        """Write buffered records out."""

    def finalize(self, status: str) -> None:
        """Called once when the run ends, with "success" or "failed"; writes what is buffered."""
        self.save()

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Called after a checkpoint callback saved, e.g. to upload the file."""

    def after_resume(self) -> None:
        """Called when fit resumes from a checkpoint, before it logs anything (after ``load_state_dict``, where
        the checkpoint holds this logger's state): what the logger received after that checkpoint came from an
        attempt that was cut short, and the resumed fit logs it again."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this logger: enough to find its folder again."""
        return {"name": self.name, "version": self.version}


class FileLogger(Logger):
    """Base of loggers that write files into ``save_dir/name/version_N``.

    It numbers versions from the ``version_N`` folders already there, keeps
    the hyperparameters in ``hparams.yaml`` and prefixes metric names;
    subclasses write the metrics.

    :param save_dir: the folder experiment folders go in.
    :param name: the experiment folder; ``None`` or ``""`` puts versions straight into ``save_dir``.
    :param version: an int (folder ``version_N``) or a folder name; the next free number when None.
    :param prefix: put before every metric name, joined with ``LOGGER_JOIN_CHAR`` ("-").
    """

    LOGGER_JOIN_CHAR = "-"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "ember_logs",
        version: int | str | None = None,
        prefix: str = "",
    ) -> None:
        self._save_dir = filesystem.normalize(save_dir)
        self._name = name or ""
        self._version = version
        self._prefix = prefix
        #: The hyperparameters logged so far, as written to hparams.yaml.
        self.hparams: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> int | str:
        """The version given, or the next free ``version_N`` number, fixed on first use.

        On global rank 0 the number is claimed by creating its folder, so runs started
        together in one folder each get their own; other ranks only look.
        """
        if self._version is None:
            root = os.path.join(self._save_dir, self._name)
            if rank_zero_only.rank == 0:  # type: ignore[attr-defined]
                self._version = claim_version(root, type(self).__name__)
            else:
                self._version = next_version(root)
        return self._version

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def log_dir(self) -> str:
        return super().log_dir  # type: ignore[return-value]

    @property
    def hparams_file_path(self) -> str:
        """``log_dir/hparams.yaml``."""
        return os.path.join(self.log_dir, self.NAME_HPARAMS_FILE)

    def _record_hparams(self, params: Mapping[str, Any] | Namespace | None) -> dict[str, Any]:
        """Merge ``params`` into :attr:`hparams`, rewrite hparams.yaml; return ``params`` as a dict."""
        params = as_params(params)
        self.hparams.update(params)
        save_hparams_yaml(self.hparams_file_path, self.hparams)
        return params

    def _prefixed(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """``metrics`` with the prefix before every name and tensors turned into numbers."""
        prefix = f"{self._prefix}{self.LOGGER_JOIN_CHAR}" if self._prefix else ""
        return {f"{prefix}{key}": _number(value) for key, value in metrics.items()}


class DummyExperiment:
    """What ``logger.experiment`` is on ranks other than 0: every method call does nothing."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _nothing


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


# ---------------------------------------------------------- for file loggers
def next_version(root: str | os.PathLike[str]) -> int:
    """One more than the highest ``version_N`` folder in ``root``; 0 when there is none."""
    found = [
        int(entry[len("version_") :])
        for entry in filesystem.listdir(root)
        if entry.startswith("version_")
        and entry[len("version_") :].isdigit()
        and filesystem.isdir(filesystem.join(root, entry))
    ]
    return max(found) + 1 if found else 0


def claim_version(root: str | os.PathLike[str], owner: str = "logger") -> int:
    """Create the next free ``root/version_N`` folder and return N; mkdir is atomic, so no two runs get one N."""
    number = next_version(root)
    folder = os.fspath(root)
    if filesystem.is_remote(root):  # no exclusive create on object stores: the next free number, as Lightning
        filesystem.makedirs(filesystem.join(root, f"version_{number}"))
        return number
    try:
        os.makedirs(folder, exist_ok=True)
        while True:
            folder = os.path.join(root, f"version_{number}")
            try:
                os.mkdir(folder)
                return number
            except FileExistsError:
                number += 1
    except OSError as error:
        raise OSError(f"{owner} cannot create its log folder {folder!r}: {error}; pass a writable save_dir") from error


def as_params(params: Mapping[str, Any] | Namespace | None) -> dict[str, Any]:
    """Hyperparameters as a plain dict, whether given as a mapping, an argparse Namespace or None."""
    if params is None:
        return {}
    if isinstance(params, Namespace):
        return dict(vars(params))
    return dict(params)


def flatten_params(params: Mapping[str, Any], parent: str = "", separator: str = "/") -> dict[str, Any]:
    """Nested hyperparameters as one level, names joined with "/": ``{"a": {"b": 1}}`` gives ``{"a/b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{parent}{separator}{key}" if parent else str(key)
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        elif isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, MutableMapping):
            flat.update(flatten_params(value, name, separator))
        elif isinstance(value, list) and value and all(isinstance(item, MutableMapping) for item in value):
            for index, item in enumerate(value):
                flat.update(flatten_params(item, f"{name}{separator}{index}", separator))
        else:
            flat[name] = value
    return flat


def require(module: str, extra: str, what: str) -> None:
    """Raise ModuleNotFoundError naming the extra to install when ``module`` cannot be imported."""
    from importlib.util import find_spec

    if find_spec(module) is None:
        raise ModuleNotFoundError(f'{what} needs the {module} package, an optional extra: pip install "ember[{extra}]"')


def _number(value: Any) -> Any:
    """A one-element tensor (or NumPy scalar) as a Python number; anything else as it is."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


@rank_zero_only
def save_hparams_yaml(path: str | os.PathLike[str], params: Mapping[str, Any]) -> None:
    """Write ``params`` to ``path`` as YAML; values YAML cannot hold are written as their repr."""
    import yaml

    filesystem.makedirs(os.path.dirname(filesystem.normalize(path)))
    with filesystem.open_file(path, "w") as handle:
        yaml.safe_dump(_plain(params), handle, sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "numel", lambda: 0)() == 1:
        return item()
    return repr(value)
