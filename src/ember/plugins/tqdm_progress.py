"""TQDMProgressBar: the default progress bar, drawn with tqdm on stdout.

It is on the path of every batch, so a batch costs a modulo and, every
``refresh_rate`` batches (Lightning's meaning), a clock read: the bar is
drawn only once tqdm's ``mininterval`` (0.1 s) has passed since it was last
drawn, and always at a loop's last batch. The metrics after the bar are read
and formatted only when it is drawn (reading them turns tensors into
numbers, a device sync on GPUs).

``Tqdm`` (Lightning's name) is the bar class every ``init_*_tqdm`` returns;
subclass it, or build one in an overridden ``init_*_tqdm``, to customise a bar.
It is made on first use, so importing this module does not import tqdm.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ember.plugins.progress_bar import SwitchableProgressBar, check_refresh_rate, finite_or_none

if TYPE_CHECKING:  # pragma: no cover
    from tqdm import tqdm

    from ember.core.module import Module
    from ember.core.trainer import Trainer

_PAD_SIZE = 5


def format_metric(value: Any) -> str:
    """A metric as the bar shows it: 3 significant digits, floats padded to 5 characters so the line keeps still."""
    from tqdm import tqdm

    if not isinstance(value, (int, float, str)):
        return str(value).strip()
    text = value if isinstance(value, str) else tqdm.format_num(value)
    if isinstance(value, int) or "e" in text:
        return text.strip()
    if "." not in text and len(text) < _PAD_SIZE:
        try:
            float(text)
        except ValueError:
            return text.strip()
        text += "."
    return (text + "0" * (_PAD_SIZE - len(text))).strip()


def format_postfix(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{key}={format_metric(value)}" for key, value in metrics.items())


def _bar_class() -> type[tqdm]:
    """:class:`Tqdm`, built on first use so that importing ember does not import tqdm."""
    global _Bar
    if _Bar is None:
        from tqdm import tqdm

        class Tqdm(tqdm):  # type: ignore[misc]
            """tqdm whose postfix comes from ``metrics()`` each time it is drawn, numbers padded, no monitor thread."""

            monitor_interval = 0
            metrics: Callable[[], str] | None = None

            @staticmethod
            def format_num(n: int | float | str) -> str:
                """Numbers with 3 significant digits, floats padded so the line keeps still."""
                return format_metric(n)

            @property
            def format_dict(self) -> dict[str, Any]:
                values: dict[str, Any] = super().format_dict
                if self.metrics is not None:
                    values["postfix"] = self.postfix = self.metrics()
                return values

        Tqdm.__module__, Tqdm.__qualname__ = __name__, "Tqdm"
        _Bar = Tqdm
    return _Bar


_Bar: type[tqdm] | None = None


def __getattr__(name: str) -> Any:
    if name == "Tqdm":
        return _bar_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TQDMProgressBar(SwitchableProgressBar):
    """Progress bars for the sanity check, training, validation, test and predict, drawn with tqdm.

    :param refresh_rate: take the batch count every this many batches; 0 turns the bar off.
        ``TQDM_MINITERS`` in the environment raises it, as in Lightning.
    :param process_position: draw this many bar pairs lower, to stack with other bars.
    :param leave: keep one finished line per epoch instead of reusing one line.
    """

    BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False) -> None:
        check_refresh_rate("TQDMProgressBar", refresh_rate, "whole numbers of batches")
        if "TQDM_MINITERS" in os.environ:
            refresh_rate = max(int(os.environ["TQDM_MINITERS"]), refresh_rate)
        super().__init__(refresh_rate)
        self._process_position = process_position
        self._leave = leave
        self._next_draw = 0.0
        self._train_progress_bar: tqdm | None = None
        self._val_progress_bar: tqdm | None = None
        self._test_progress_bar: tqdm | None = None
        self._predict_progress_bar: tqdm | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {key: None if key.endswith("_progress_bar") else value for key, value in vars(self).items()}

    @property
    def process_position(self) -> int:
        return self._process_position

    @property
    def train_progress_bar(self) -> tqdm | None:
        return self._train_progress_bar

    @property
    def val_progress_bar(self) -> tqdm | None:
        return self._val_progress_bar

    @property
    def test_progress_bar(self) -> tqdm | None:
        return self._test_progress_bar

    @property
    def predict_progress_bar(self) -> tqdm | None:
        return self._predict_progress_bar

    # ------------------------------------------------------------- the bars
    def _new_bar(self, description: str, position: int, leave: bool, with_metrics: bool = False) -> tqdm:
        bar = _bar_class()(
            desc=description,
            position=2 * self._process_position + position,
            leave=leave,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )
        if with_metrics:
            trainer = self.trainer
            bar.metrics = lambda: format_postfix(self.get_metrics(trainer, trainer.lightning_module))  # type: ignore[attr-defined, arg-type]
        return bar

    def init_sanity_tqdm(self) -> tqdm:
        """The sanity check's bar; override to customise it."""
        return self._new_bar(self.sanity_check_description, 0, leave=False)

    def init_train_tqdm(self) -> tqdm:
        """The training bar (it shows the metrics); override to customise it."""
        return self._new_bar(self.train_description, 0, leave=True, with_metrics=True)

    def init_validation_tqdm(self) -> tqdm:
        """The validation bar: under the training bar during fit, on its own in validate()."""
        in_fit = self.trainer.state.fn is not None and self.trainer.state.fn.value == "fit"
        return self._new_bar(self.validation_description, int(in_fit), leave=not in_fit)

    def init_test_tqdm(self) -> tqdm:
        return self._new_bar(self.test_description, 0, leave=True)

    def init_predict_tqdm(self) -> tqdm:
        return self._new_bar(self.predict_description, 0, leave=True)

    def _advance(self, bar: tqdm, n: int) -> None:
        """Count ``n`` batches done: drawn at the last batch, else every ``refresh_rate`` batches once tqdm's
        ``mininterval`` has passed since the last drawing."""
        if not self._enabled or (n % self._refresh_rate and n != bar.total):
            return
        bar.n = n
        if bar.disable or (n != bar.total and time.monotonic() < self._next_draw):
            return
        bar.refresh()
        self._next_draw = time.monotonic() + bar.mininterval

    @staticmethod
    def _restart(bar: tqdm, total: int | float, description: str) -> None:
        """Start ``bar`` over at 0 of ``total`` under ``description``, drawing it once."""
        bar.set_description(description, refresh=False)
        bar.total = finite_or_none(total)
        bar.initial = 0
        bar.reset()

    @staticmethod
    def _close(bar: tqdm | None) -> None:
        if bar is not None:
            bar.close()

    # ----------------------------------------------------------- sanity check
    def on_sanity_check_start(self, trainer: Trainer, pl_module: Module) -> None:
        if self.is_enabled:
            self._val_progress_bar = self.init_sanity_tqdm()

    def on_sanity_check_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._shut("_val_progress_bar")

    # ---------------------------------------------------------------- training
    def on_train_start(self, trainer: Trainer, pl_module: Module) -> None:
        if not self.is_enabled:
            return
        bar = self._train_progress_bar = self.init_train_tqdm()
        done = trainer.fit_progress.batches_in_epoch
        if done:  # resumed mid-epoch: on_train_epoch_start does not run
            self._restart(bar, self.total_train_batches, f"Epoch {trainer.current_epoch}")
            bar.n = bar.initial = done
            bar.refresh()

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        bar = self._train_progress_bar
        if bar is None:
            return
        if self._leave and bar.n:
            bar.close()
            bar = self._train_progress_bar = self.init_train_tqdm()
        self._restart(bar, self.total_train_batches, f"Epoch {trainer.current_epoch}")

    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        bar = self._train_progress_bar
        if bar is not None:
            self._advance(bar, batch_idx + 1)

    def on_train_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._shut("_train_progress_bar")

    # ------------------------------------------------- validation, test, predict
    def on_validation_start(self, trainer: Trainer, pl_module: Module) -> None:
        if trainer.sanity_checking:
            self._first_dataloader(self._val_progress_bar, trainer.num_val_batches)
        else:
            self._open("_val_progress_bar", self.init_validation_tqdm, trainer.num_val_batches)

    def on_test_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._open("_test_progress_bar", self.init_test_tqdm, trainer.num_test_batches)

    def on_predict_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._open("_predict_progress_bar", self.init_predict_tqdm, trainer.num_predict_batches)

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch_end(self._val_progress_bar, batch_idx, dataloader_idx)

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch_end(self._test_progress_bar, batch_idx, dataloader_idx)

    def on_predict_batch_end(
        self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch_end(self._predict_progress_bar, batch_idx, dataloader_idx)

    def on_validation_end(self, trainer: Trainer, pl_module: Module) -> None:
        if not trainer.sanity_checking:
            self._shut("_val_progress_bar")
        self.reset_dataloader_idx_tracker()
        if self._train_progress_bar is not None:
            self._train_progress_bar.refresh()  # shows what validation logged

    def on_test_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._shut("_test_progress_bar")

    def on_predict_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._shut("_predict_progress_bar")

    def _open(self, name: str, factory: Callable[[], tqdm], counts: list[float]) -> None:
        if self.is_enabled:
            setattr(self, name, factory())
            self._first_dataloader(getattr(self, name), counts)

    def _shut(self, name: str) -> None:
        self._close(getattr(self, name))
        setattr(self, name, None)
        self.reset_dataloader_idx_tracker()

    def _first_dataloader(self, bar: tqdm | None, counts: list[float]) -> None:
        """Show the first dataloader's total at once (ember has no batch-start hook here, to keep batches cheap)."""
        if bar is not None and counts and counts[0]:
            self._switch_dataloader(bar, 0)

    def _switch_dataloader(self, bar: tqdm, dataloader_idx: int) -> None:
        self.has_dataloader_changed(dataloader_idx)
        total, description = self.eval_total_and_description()
        self._restart(bar, total, f"{description} DataLoader {dataloader_idx}")

    def _eval_batch_end(self, bar: tqdm | None, batch_idx: int, dataloader_idx: int) -> None:
        if bar is None:
            return
        if dataloader_idx != self._current_eval_dataloader_idx:
            self._switch_dataloader(bar, dataloader_idx)
        self._advance(bar, batch_idx + 1)

    # ------------------------------------------------------------------- end
    def on_exception(self, trainer: Trainer, pl_module: Module, exception: BaseException) -> None:
        """Close whatever bar is open, so the traceback starts on a fresh line; metrics are not read again."""
        if self._train_progress_bar is not None:
            self._train_progress_bar.metrics = None  # type: ignore[attr-defined]
        for name in ("_val_progress_bar", "_test_progress_bar", "_predict_progress_bar", "_train_progress_bar"):
            self._shut(name)

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        """Print above the active bar without breaking it."""
        from tqdm import tqdm

        bars = (self._train_progress_bar, self._val_progress_bar, self._test_progress_bar, self._predict_progress_bar)
        if any(bar is not None for bar in bars):
            tqdm.write(sep.join(map(str, args)), file=sys.stdout, **kwargs)
        else:
            print(*args, sep=sep, **kwargs)
