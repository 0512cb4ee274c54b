"""The DataModule: data preparation, splits and dataloaders in one reusable object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader, Dataset, IterableDataset

from ember.core.hparams import HyperparametersMixin

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


class DataModule(HyperparametersMixin):
    """Base class for data: override ``prepare_data``, ``setup`` and the ``*_dataloader`` methods you need.

    The Trainer calls ``prepare_data`` once per node, then ``setup(stage)``
    before the callbacks' setup, and asks for dataloaders when a loop needs
    them; ``state_dict``/``load_state_dict`` go into checkpoints.
    """

    def __init__(self) -> None:
        self.trainer: Trainer | None = None

    def prepare_data(self) -> None:
        """Download or write data, once per node; do not set state here."""

    def setup(self, stage: str) -> None:
        """Build datasets for ``stage`` (fit, validate, test or predict)."""

    def teardown(self, stage: str) -> None:
        """Release what ``setup`` built."""

    def state_dict(self) -> dict[str, Any]:
        """What to keep of this DataModule in checkpoints (nothing by default)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    def on_exception(self, exception: BaseException) -> None:
        """Called when a run raised."""

    @classmethod
    def from_datasets(
        cls,
        train_dataset: Dataset[Any] | Sequence[Dataset[Any]] | Mapping[str, Dataset[Any]] | None = None,
        val_dataset: Dataset[Any] | Sequence[Dataset[Any]] | None = None,
        test_dataset: Dataset[Any] | Sequence[Dataset[Any]] | None = None,
        predict_dataset: Dataset[Any] | Sequence[Dataset[Any]] | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        **dataloader_kwargs: Any,
    ) -> DataModule:
        """A DataModule serving the given datasets (training shuffled, the others in order)."""

        def loader(dataset: Any, shuffle: bool) -> Any:
            if isinstance(dataset, (list, tuple)):
                return [loader(item, shuffle) for item in dataset]
            shuffle = shuffle and not isinstance(dataset, IterableDataset)
            return DataLoader(
                dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, **dataloader_kwargs
            )

        datamodule = cls()
        given = {"train": train_dataset, "val": val_dataset, "test": test_dataset, "predict": predict_dataset}
        for kind, dataset in given.items():
            if dataset is not None:
                setattr(datamodule, f"{kind}_dataloader", lambda d=dataset, k=kind: loader(d, shuffle=k == "train"))
        return datamodule

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, map_location: Any = None, **kwargs: Any) -> Any:
        """Build this DataModule from a checkpoint's ``datamodule_hyper_parameters`` (``kwargs`` override) and state."""
        from ember.core.checkpoint import load_checkpoint_file

        checkpoint = load_checkpoint_file(checkpoint_path, map_location=map_location or "cpu")
        datamodule = cls(**{**checkpoint.get("datamodule_hyper_parameters", {}), **kwargs})
        if cls.__qualname__ in checkpoint:
            datamodule.load_state_dict(checkpoint[cls.__qualname__])
        return datamodule
