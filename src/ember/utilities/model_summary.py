"""``ModelSummary`` and ``summarize``: Lightning's summary object, drawn by the ModelSummary callback's code.

``str(summarize(model))`` is the table the callback prints when fit starts;
the numbers are attributes (``total_parameters``, ``trainable_parameters``,
``model_size`` ...) for code that reads them instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ember.plugins import model_summary as _table

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ModelSummary", "get_human_readable_count", "summarize"]

get_human_readable_count = _table.human_readable_count


class ModelSummary:
    """The layers of ``model`` down to ``max_depth`` (1: its children, -1: every module) and its totals."""

    def __init__(self, model: torch.nn.Module, max_depth: int = 1) -> None:
        self._model = model
        self._max_depth = _table.check_max_depth(max_depth)
        self._summary = _table.summarize(model, self._max_depth)

    @property
    def max_depth(self) -> int:
        return self._max_depth

    def _column(self, header: str) -> list[str]:
        cells = dict(self._summary.columns).get(header, [])
        return [cell for cell, name in zip(cells, self.layer_names)]

    @property
    def layer_names(self) -> list[str]:
        names = dict(self._summary.columns).get("Name", [])
        return [name for name in names if name != "other params"]

    @property
    def layer_types(self) -> list[str]:
        return self._column("Type")

    @property
    def param_nums(self) -> list[int]:
        layers = dict(self._model.named_modules())
        return [sum(p.numel() for p in layers[name].parameters()) for name in self.layer_names]

    @property
    def total_parameters(self) -> int:
        return self._summary.total_parameters

    @property
    def trainable_parameters(self) -> int:
        return self._summary.trainable_parameters

    @property
    def model_size(self) -> float:
        """Megabytes the parameters take."""
        return self._summary.model_size

    @property
    def total_training_modes(self) -> dict[str, int]:
        return dict(self._summary.training_modes)

    @property
    def total_flops(self) -> int:
        return self._summary.total_flops

    def __str__(self) -> str:
        summary = self._summary
        return _table.format_summary_table(
            summary.total_parameters,
            summary.trainable_parameters,
            summary.model_size,
            summary.training_modes,
            summary.total_flops,
            *summary.columns,
        )

    def __repr__(self) -> str:
        return str(self)


def summarize(lightning_module: torch.nn.Module, max_depth: int = 1) -> ModelSummary:
    """The :class:`ModelSummary` of ``lightning_module``; ``print`` it for the table."""
    return ModelSummary(lightning_module, max_depth=max_depth)
