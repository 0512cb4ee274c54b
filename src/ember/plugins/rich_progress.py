"""RichProgressBar: progress bars drawn with rich, refreshed by a background thread.

As in Lightning 2.6, ``refresh_rate`` is in refreshes per second (0 turns the
bar off) and a thread draws, so that drawing does not slow the loop. A batch
costs a clock read: every ``1 / refresh_rate`` seconds the loop hands rich the
batch count and the metrics (read then, not every batch), and the thread
redraws only when something was handed over. When the console is not a
terminal (a log file, captured output) nothing would be seen until the end,
so there is no thread and each bar is handed its final count when its loop
ends. The thread is stopped, and the terminal given back, when the run ends
or raises.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ember.plugins.progress_bar import SwitchableProgressBar, check_refresh_rate, finite_or_none

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.style import Style

    from ember.core.module import Module
    from ember.core.trainer import Trainer


@dataclass
class RichProgressBarTheme:
    """Styles of the bar's parts (rich style strings or ``Style`` objects) and how metrics are written."""

    description: str | Style = ""
    progress_bar: str | Style = "#6206E0"
    progress_bar_finished: str | Style = "#6206E0"
    progress_bar_pulse: str | Style = "#6206E0"
    batch_progress: str | Style = ""
    time: str | Style = "dim"
    processing_speed: str | Style = "dim underline"
    metrics: str | Style = "italic"
    metrics_text_delimiter: str = " "
    metrics_format: str = ".3f"


class _Refresher(threading.Thread):
    """Redraws a rich Progress at most ``per_second`` times a second, and only after something changed."""

    def __init__(self, progress: Progress, per_second: float) -> None:
        super().__init__(name="ember-rich-progress", daemon=True)
        self.progress = progress
        self.interval = 1.0 / per_second
        self.changed = False
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            if self.changed:
                self.changed = False
                self.progress.refresh()

    def stop(self) -> None:
        self.done.set()
        if self is not threading.current_thread():
            self.join()


def _column_types() -> dict[str, Any]:
    """The rich columns the bar uses, defined on first use so that importing ember does not import rich."""
    global _COLUMNS
    if _COLUMNS is not None:
        return _COLUMNS
    from datetime import timedelta

    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class StyledColumn(ProgressColumn):
        def __init__(self, style: str | Style) -> None:
            self.style = style
            super().__init__()

    class BatchesColumn(StyledColumn):
        """``done/total``; ``--`` for a dataloader of unknown length."""

        def render(self, task: Task) -> Text:
            total = "--" if task.total is None else task.total
            return Text(f"{int(task.completed)}/{total}", style=self.style)

    class TimeColumn(StyledColumn):
        """``elapsed • remaining``."""

        max_refresh = 0.5

        def render(self, task: Task) -> Text:
            elapsed = task.finished_time if task.finished else task.elapsed
            remaining = task.time_remaining
            shown = [
                "-:--:--" if value is None else str(timedelta(seconds=int(value))) for value in (elapsed, remaining)
            ]
            return Text(" • ".join(shown), style=self.style)

    class SpeedColumn(StyledColumn):
        """Batches per second: rich's recent estimate, else the average since the bar started."""

        def render(self, task: Task) -> Text:
            speed = task.speed
            if speed is None:
                elapsed = task.finished_time if task.finished else task.elapsed
                speed = task.completed / elapsed if elapsed else 0.0
            return Text(f"{speed:>.2f}it/s", style=self.style)

    class MetricsColumn(StyledColumn):
        """The metrics, on the training bar only; ``metrics`` is replaced whole by the loop, never mutated."""

        def __init__(self, style: str | Style, delimiter: str, number_format: str) -> None:
            super().__init__(style)
            self.delimiter, self.number_format = delimiter, number_format
            self.metrics: dict[str, Any] = {}
            self.task_id: Any = None

        def render(self, task: Task) -> Text:
            if task.id != self.task_id:
                return Text()
            return Text(self.delimiter.join(self._texts()), justify="left", style=self.style)

        def _texts(self) -> Any:
            for name, value in self.metrics.items():
                if not isinstance(value, str):
                    try:
                        value = f"{value:{self.number_format}}"
                    except (TypeError, ValueError):
                        value = str(value)
                yield f"{name}: {value}"

    _COLUMNS = {"batches": BatchesColumn, "time": TimeColumn, "speed": SpeedColumn, "metrics": MetricsColumn}
    return _COLUMNS


_COLUMNS: dict[str, Any] | None = None

# the task id attribute of each evaluation stage (trainer.state.stage values)
_EVAL_TASKS = {
    "sanity_check": "val_sanity_progress_bar_id",
    "validate": "val_progress_bar_id",
    "test": "test_progress_bar_id",
    "predict": "predict_progress_bar_id",
}


class RichProgressBar(SwitchableProgressBar):
    """Progress bars for the sanity check, training, validation, test and predict, drawn with rich.

    :param refresh_rate: redraws per second at most; 0 turns the bar off.
    :param leave: keep each epoch's finished bar instead of reusing one.
    :param theme: styles of the bar's parts, see :class:`RichProgressBarTheme`.
    :param console_kwargs: keyword arguments for the ``rich.console.Console`` the bar draws on
        (e.g. ``{"force_terminal": True}``).
    """

    def __init__(
        self,
        refresh_rate: int = 100,
        leave: bool = False,
        theme: RichProgressBarTheme | None = None,
        console_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check_refresh_rate("RichProgressBar", refresh_rate, "refreshes per second", whole=False)
        super().__init__(refresh_rate)
        self._leave = leave
        self.theme = theme if theme is not None else RichProgressBarTheme()
        self._console_kwargs = dict(console_kwargs or {})
        self.progress: Progress | None = None
        self._refresher: _Refresher | None = None
        self._metrics_column: Any = None
        self._interval = math.inf
        self._due = math.inf
        self._pending_task: TaskID | None = None
        self._pending_count = 0
        self._reset_progress_bar_ids()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(progress=None, _refresher=None, _metrics_column=None)
        return state

    @property
    def console(self) -> Console | None:
        """The console the bars are drawn on while they are shown."""
        return self.progress.console if self.progress is not None else None

    def _reset_progress_bar_ids(self) -> None:
        self.train_progress_bar_id: TaskID | None = None
        self.val_sanity_progress_bar_id: TaskID | None = None
        self.val_progress_bar_id: TaskID | None = None
        self.test_progress_bar_id: TaskID | None = None
        self.predict_progress_bar_id: TaskID | None = None

    # ------------------------------------------------------------- showing
    def configure_columns(self, trainer: Trainer) -> list[Any]:
        """The columns before the metrics; override to change them."""
        from rich.progress import BarColumn, TextColumn

        columns = _column_types()
        return [
            TextColumn("[progress.description]{task.description}"),
            BarColumn(
                complete_style=self.theme.progress_bar,
                finished_style=self.theme.progress_bar_finished,
                pulse_style=self.theme.progress_bar_pulse,
            ),
            columns["batches"](self.theme.batch_progress),
            columns["time"](self.theme.time),
            columns["speed"](self.theme.processing_speed),
        ]

    def _start(self, trainer: Trainer) -> None:
        """Start showing bars, unless they are off or already shown."""
        if not self.is_enabled or self.progress is not None:
            return
        from rich.console import Console
        from rich.progress import Progress

        console = Console(**self._console_kwargs)
        theme = self.theme
        self._metrics_column = _column_types()["metrics"](
            theme.metrics, theme.metrics_text_delimiter, theme.metrics_format
        )
        self._reset_progress_bar_ids()
        self.progress = Progress(
            *self.configure_columns(trainer), self._metrics_column, console=console, auto_refresh=False
        )
        self.progress.start()
        live = console.is_terminal and not console.is_dumb_terminal or console.is_jupyter
        if live:
            self._refresher = _Refresher(self.progress, self._refresh_rate)
            self._refresher.start()
        self._interval = 1.0 / self._refresh_rate if live else math.inf
        self._due = time.monotonic()

    def _stop(self, final: bool = True) -> None:
        """Stop the thread, then rich (which draws the bars' last state); safe to call twice."""
        refresher, self._refresher = self._refresher, None
        if refresher is not None:
            refresher.stop()
        progress, self.progress = self.progress, None
        if progress is None:
            return
        try:
            if final:
                self._flush(progress)
        finally:
            progress.stop()
            self._pending_task = None
            self._due = math.inf

    def _changed(self) -> None:
        if self._refresher is not None:
            self._refresher.changed = True

    def _add_task(self, total: int | float, description: str, visible: bool = True) -> TaskID:
        assert self.progress is not None
        if self.theme.description:
            description = f"[{self.theme.description}]{description}"
        return self.progress.add_task(description, total=finite_or_none(total), visible=visible)

    def _hide(self, task_id: TaskID | None) -> None:
        if self.progress is not None and task_id is not None:
            if self._pending_task == task_id:
                self._flush(self.progress)
            self.progress.update(task_id, visible=False)
            self._changed()

    # ---------------------------------------------------------- the counts
    def _count(self, task_id: TaskID | None, done: int) -> None:
        """Note ``done`` batches on ``task_id``; hand them to rich when the refresh interval has passed."""
        if task_id != self._pending_task and self._pending_task is not None:
            self._flush(self.progress)  # another bar's count is waiting: it goes first
        self._pending_task = task_id
        self._pending_count = done
        if time.monotonic() >= self._due:
            self._flush(self.progress)

    def _flush(self, progress: Progress | None) -> None:
        """Hand rich the noted count (and, on the training bar, fresh metrics) and ask for a redraw."""
        task_id = self._pending_task
        if progress is None or task_id is None:
            return
        self._pending_task = None
        progress.update(task_id, completed=self._pending_count)
        if task_id == self.train_progress_bar_id:
            self._update_metrics()
        self._changed()
        self._due = time.monotonic() + self._interval

    def _update_metrics(self) -> None:
        trainer = self._trainer
        if self._metrics_column is not None and trainer is not None:
            self._metrics_column.metrics = self.get_metrics(trainer, trainer.lightning_module)  # type: ignore[arg-type]
            self._metrics_column.task_id = self.train_progress_bar_id

    # ------------------------------------------------------------- training
    def on_sanity_check_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._start(trainer)

    def on_sanity_check_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._hide(self.val_sanity_progress_bar_id)

    def on_train_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._start(trainer)
        if self.progress is not None and trainer.fit_progress.batches_in_epoch:  # resumed mid-epoch
            self.train_progress_bar_id = self._add_task(self.total_train_batches, self._train_description(trainer))
            self._count(self.train_progress_bar_id, trainer.fit_progress.batches_in_epoch)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        if self.progress is None:
            return
        if self._leave and self.train_progress_bar_id is not None:
            self._update_metrics()  # the ended epoch's values, reduced after its on_train_epoch_end
            self._stop()
            self._start(trainer)
            assert self.progress is not None
        total, description = self.total_train_batches, self._train_description(trainer)
        if self.train_progress_bar_id is None or total is None or not math.isfinite(total):
            self._hide(self.train_progress_bar_id)
            self.train_progress_bar_id = self._add_task(total, description)
        else:
            self.progress.reset(self.train_progress_bar_id, total=total, description=description, visible=True)
        self._metrics_column.task_id = self.train_progress_bar_id
        self._changed()

    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.progress is not None:
            self._count(self.train_progress_bar_id, batch_idx + 1)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self.progress is not None:
            self._flush(self.progress)

    def _train_description(self, trainer: Trainer) -> str:
        description = f"Epoch {trainer.current_epoch}"
        if trainer.max_epochs not in (None, -1):
            description += f"/{trainer.max_epochs - 1}"
        return description.ljust(len(self.validation_description))

    # ------------------------------------------------- validation, test, predict
    def on_validation_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._start(trainer)
        self._first_dataloader(trainer.num_val_batches)

    def on_test_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._start(trainer)
        self._first_dataloader(trainer.num_test_batches)

    def on_predict_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._start(trainer)
        self._first_dataloader(trainer.num_predict_batches)

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch_end(batch_idx, dataloader_idx)

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch_end(batch_idx, dataloader_idx)

    def on_predict_batch_end(
        self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch_end(batch_idx, dataloader_idx)

    def on_validation_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._end_eval(trainer)
        if trainer.state.fn is not None and trainer.state.fn.value == "fit" and not trainer.sanity_checking:
            self._hide(self.val_progress_bar_id)
            self._update_metrics()
            self._changed()

    def on_test_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._end_eval(trainer)

    def on_predict_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._end_eval(trainer)

    def _eval_task(self) -> str:
        stage = self.trainer.state.stage
        return _EVAL_TASKS[stage.value if stage is not None else "validate"]

    def _first_dataloader(self, counts: list[float]) -> None:
        """Show the first dataloader's bar before its first batch ends (ember has no batch-start hook here)."""
        if self.progress is not None and counts and counts[0]:
            self._switch_dataloader(0)

    def _switch_dataloader(self, dataloader_idx: int) -> None:
        self.has_dataloader_changed(dataloader_idx)
        name = self._eval_task()
        self._hide(getattr(self, name))
        total, description = self.eval_total_and_description()
        setattr(self, name, self._add_task(total, description))
        self._changed()

    def _eval_batch_end(self, batch_idx: int, dataloader_idx: int) -> None:
        if self.progress is None:
            return
        if dataloader_idx != self._current_eval_dataloader_idx:
            self._switch_dataloader(dataloader_idx)
        self._count(getattr(self, self._eval_task()), batch_idx + 1)

    def _end_eval(self, trainer: Trainer) -> None:
        self._flush(self.progress)
        self.reset_dataloader_idx_tracker()

    # ------------------------------------------------------------------- end
    def teardown(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        if self.progress is not None and stage == "fit":
            self._update_metrics()  # the epoch-end values, logged after the last on_train_epoch_end
        self._stop()

    def on_exception(self, trainer: Trainer, pl_module: Module, exception: BaseException) -> None:
        self._stop(final=False)

    def print(self, *args: Any, **kwargs: Any) -> None:
        """Print above the bars without breaking them."""
        if self.progress is not None:
            self.progress.console.print(*args, **kwargs)
        else:
            print(*args, **kwargs)
