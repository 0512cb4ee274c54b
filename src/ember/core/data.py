"""Dataloaders: where they come from, how many batches to take, and how to resume inside an epoch."""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, IterableDataset, Sampler

from ember.errors import MisconfigurationError

KINDS = ("train", "val", "test", "predict")


def length(loader: Iterable[Any]) -> float:
    """Number of batches ``loader`` yields, ``inf`` when it cannot tell."""
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return math.inf


def limited_length(loader: Iterable[Any], limit: int | float, flag: str) -> float:
    """Batches to take from ``loader`` under a ``limit_*_batches`` value (a count or a fraction)."""
    available = length(loader)
    if isinstance(limit, int):
        return min(available, limit)
    if limit == 1.0:
        return available
    if available == math.inf:
        raise MisconfigurationError(
            f"{flag}={limit} is a fraction, but the dataloader has no length; pass an int number of batches"
        )
    count = int(available * limit)
    if count == 0 and limit > 0:
        raise MisconfigurationError(
            f"{flag}={limit} of {int(available)} batches is less than one batch; "
            f"pass at least {1 / available:.4g} or an int"
        )
    return count


def val_check_batch(interval: int | float, train_batches: float, check_val_every_n_epoch: int | None) -> float:
    """After how many training batches validation runs, from ``val_check_interval``."""
    if isinstance(interval, int):
        if interval > train_batches and check_val_every_n_epoch is not None:
            raise MisconfigurationError(
                f"val_check_interval={interval} is more than the {train_batches} training batches of an epoch; "
                "use a smaller value, a fraction, or check_val_every_n_epoch=None to validate every "
                f"{interval} batches across epochs"
            )
        return interval
    if train_batches == math.inf:
        if interval != 1.0:
            raise MisconfigurationError(
                f"val_check_interval={interval} is a fraction of an epoch, but the training dataloader has no "
                "length; pass an int number of batches"
            )
        return math.inf
    return max(1, int(train_batches * interval))


def seed_workers(loader: Any, rank: int) -> None:
    """Give a DataLoader's workers seeded ``random``/NumPy when ``seed_everything(workers=True)`` asked for it."""
    if os.environ.get("EMBER_SEED_WORKERS") != "1" or not isinstance(loader, DataLoader):
        return
    if loader.num_workers > 0 and loader.worker_init_fn is None:
        from ember.core.seed import worker_init_function

        loader.worker_init_fn = functools.partial(worker_init_function, rank=rank)


def as_list(loaders: Any) -> list[Any]:
    """One or several evaluation dataloaders as a list."""
    if loaders is None:
        return []
    if isinstance(loaders, (list, tuple)):
        return list(loaders)
    return [loaders]


def source_loaders(kind: str, given: Any, datamodule: Any, module: Any) -> Any:
    """The loaders of ``kind``: those passed to the Trainer method, else the datamodule's, else the model's."""
    if given is not None:
        return given
    method = f"{kind}_dataloader"
    for owner in (datamodule, module):
        if owner is not None and callable(getattr(owner, method, None)):
            return getattr(owner, method)()
    return None


Batches = Generator[tuple[int, Any, bool], None, None]


def batches(loader: Iterable[Any], count: float, skip: int = 0) -> Batches:
    """``(batch_idx, batch, is_last)`` for up to ``count`` batches, the first ``skip`` left out.

    The loader's iterator is created now, not at the first batch, so a
    sampler draws its order from the random state of this moment. Skipped
    batches are not loaded when the loader is a plain DataLoader: its sampler
    is advanced instead, so a resumed epoch sees exactly the remaining
    batches of the interrupted one.
    """
    iterator = _iterator(loader, skip)
    if count == math.inf:
        return _with_lookahead(iterator, skip)
    return _counted(iterator, int(count), skip)


def _counted(iterator: Iterator[Any], count: int, start: int) -> Batches:
    last = count - 1
    for batch_idx, batch in zip(range(start, count), iterator):
        yield batch_idx, batch, batch_idx == last


def _with_lookahead(iterator: Iterator[Any], start: int) -> Batches:
    try:
        upcoming = next(iterator)
    except StopIteration:
        return
    for batch_idx in itertools.count(start):
        current = upcoming
        try:
            upcoming = next(iterator)
        except StopIteration:
            yield batch_idx, current, True
            return
        yield batch_idx, current, False


def _iterator(loader: Iterable[Any], skip: int) -> Iterator[Any]:
    if (
        skip
        and type(loader) is DataLoader
        and loader.batch_sampler is not None
        and not isinstance(loader.dataset, IterableDataset)
    ):
        sampler = _SkipFirst(loader.batch_sampler, skip)  # type: ignore[arg-type]
        started = iter(_with_batch_sampler(loader, sampler))
        sampler.start()
        return started
    iterator = iter(loader)
    for _ in range(skip):
        next(iterator, None)
    return iterator


class _SkipFirst(Sampler[list[int]]):
    """A batch sampler that draws its inner sampler's batches and drops the first ``skip``.

    A DataLoader draws its base seed when its iterator is created, and a
    shuffling sampler its order at the first batch (at once with workers).
    :meth:`start` draws the order right after the base seed, as the
    interrupted epoch did, whatever the loader fetches later.
    """

    def __init__(self, batch_sampler: Sequence[list[int]] | BatchSampler, skip: int) -> None:
        self.batch_sampler, self.skip = batch_sampler, skip
        self._inner: Iterator[list[int]] = iter(())
        self._left = 0

    def __iter__(self) -> Iterator[list[int]]:
        self._inner, self._left = iter(self.batch_sampler), self.skip
        return self

    def __next__(self) -> list[int]:
        self.start()
        return next(self._inner)

    def start(self) -> None:
        """Draw the order and drop the skipped batches now, if not done yet."""
        for _ in range(self._left):
            next(self._inner, None)
        self._left = 0

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.skip, 0)  # type: ignore[arg-type]


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The ``torch.Generator`` objects a DataLoader and its samplers shuffle with, each once."""
    found: list[torch.Generator] = []
    batch_sampler = getattr(loader, "batch_sampler", None)
    for owner in (loader, getattr(loader, "sampler", None), getattr(batch_sampler, "sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not known for known in found):
            found.append(generator)
    return found


class IndexRecorder:
    """Records the sample indices of each batch as a plain DataLoader's batch sampler draws them."""

    def __init__(self, loader: Any, batch_sampler: Any) -> None:
        self.loader, self._batch_sampler = loader, batch_sampler
        self._drawn: list[list[int]] = []

    @classmethod
    def wrap(cls, loader: Any) -> IndexRecorder:
        """A recorder whose ``loader`` yields what ``loader`` yields; without a batch sampler, records nothing."""
        if type(loader) is not DataLoader or loader.batch_sampler is None:
            return cls(loader, None)
        recorder = cls(loader, loader.batch_sampler)
        recorder.loader = _with_batch_sampler(loader, _Recording(loader.batch_sampler, recorder._drawn))
        return recorder

    def next_indices(self) -> list[int]:
        """The indices of the batch just yielded (in order: batches come out in the order they were drawn)."""
        return self._drawn.pop(0) if self._drawn else []


class _Recording(Sampler[list[int]]):
    def __init__(self, batch_sampler: Any, drawn: list[list[int]]) -> None:
        self.batch_sampler, self.drawn = batch_sampler, drawn

    def __iter__(self) -> Iterator[list[int]]:
        for indices in self.batch_sampler:
            self.drawn.append(list(indices))
            yield indices

    def __len__(self) -> int:
        return len(self.batch_sampler)


def _with_batch_sampler(loader: DataLoader[Any], batch_sampler: Sampler[list[int]]) -> DataLoader[Any]:
    """A DataLoader like ``loader`` (workers, collate, pinning ...) drawing from ``batch_sampler``."""
    return _copy(loader, batch_sampler=batch_sampler)


def without_shuffling(loader: Any, kind: str) -> Any:
    """``loader`` drawing its samples in order, for ``overfit_batches``; warns when that changes a shuffling loader."""
    from torch.utils.data import SequentialSampler

    if type(loader) is not DataLoader or isinstance(loader.dataset, IterableDataset) or loader.batch_size is None:
        return loader
    if type(loader.sampler) is SequentialSampler:
        return loader
    if kind == "train":
        import warnings

        from ember.errors import EmberWarning

        warnings.warn(
            "You requested to overfit but enabled train dataloader shuffling; the train dataloader now draws its "
            "samples in order (a SequentialSampler), so every epoch sees the same first batches",
            EmberWarning,
            stacklevel=2,
        )
    return with_sampler(loader, SequentialSampler(loader.dataset))  # type: ignore[arg-type]


def with_sampler(loader: DataLoader[Any], sampler: Sampler[int]) -> DataLoader[Any]:
    """A DataLoader like ``loader`` (batch size, workers, collate ...) drawing indices from ``sampler``."""
    return _copy(loader, sampler=sampler, batch_size=loader.batch_size, drop_last=loader.drop_last)


def _copy(loader: DataLoader[Any], **sampling: Any) -> DataLoader[Any]:
    workers = loader.num_workers
    return DataLoader(
        loader.dataset,
        **sampling,
        num_workers=workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers else None,
        persistent_workers=loader.persistent_workers if workers else False,
        pin_memory_device=loader.pin_memory_device,
    )
