"""ModelSummary: a table of the model's layers, printed once when fit starts.

Each row is a layer (the model's children by default): its name, type,
parameter count and train/eval mode, and, when the model sets
``example_input_array``, the FLOPs and input and output sizes of one forward
pass on that example. Totals follow: trainable, non-trainable and total
parameters, the estimated size of the parameters in MB, and how many
modules are in train and eval mode. :func:`summarize` computes it all;
:class:`~ember.plugins.rich_model_summary.RichModelSummary` draws the same
numbers with rich.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ember.core.module import Module
    from ember.core.trainer import Trainer

UNKNOWN_SIZE = "?"
NOT_APPLICABLE = "n/a"
_UNITS = (" ", "K", "M", "B", "T")


@dataclass
class Summary:
    """What a model summary shows: the table's columns and the totals under it."""

    #: ``(header, cells)`` per column: " ", Name, Type, Params, Mode, FLOPs, then In/Out sizes if known.
    columns: list[tuple[str, list[str]]]
    total_parameters: int
    trainable_parameters: int
    #: Megabytes the parameters take, from their element sizes.
    model_size: float
    #: Submodules (the model itself not counted) in train and in eval mode.
    training_modes: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    total_flops: int = 0


def check_max_depth(max_depth: Any) -> int:
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < -1:
        raise MisconfigurationError(
            f"max_depth={max_depth!r}: accepted are -1 (every layer), 0 (no summary) or a depth >= 1"
        )
    return max_depth


def summarize(model: torch.nn.Module, max_depth: int = 1) -> Summary:
    """Summarize ``model``'s layers down to ``max_depth`` (-1: all); runs ``example_input_array`` through it if set."""
    import torch

    max_depth = check_max_depth(max_depth)
    if max_depth == 0:
        layers: list[tuple[str, torch.nn.Module]] = []
    elif max_depth == 1:
        layers = list(model.named_children())
    else:
        layers = list(model.named_modules())[1:]
        if max_depth > 1:
            layers = [(name, layer) for name, layer in layers if name.count(".") < max_depth]
    sizes: dict[str, tuple[Any, Any]] = {}
    flops: dict[str, int] = {}
    example = getattr(model, "example_input_array", None)
    total_flops = 0
    if example is not None:
        total_flops = _forward_example(model, example, layers, sizes, flops)
    parameters = [p for p in model.parameters() if not isinstance(p, torch.nn.parameter.UninitializedParameter)]
    total = sum(p.numel() for p in parameters)
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    layer_params = [_count(layer) for _, layer in layers]
    columns = [
        (" ", [str(index) for index in range(len(layers))]),
        ("Name", [name for name, _ in layers]),
        ("Type", [type(layer).__name__ for _, layer in layers]),
        ("Params", [human_readable_count(count) for count in layer_params]),
        ("Mode", ["train" if layer.training else "eval" for _, layer in layers]),
        ("FLOPs", [human_readable_count(flops.get(name, 0)) for name, _ in layers]),
    ]
    if example is not None:
        columns.append(("In sizes", [str(sizes.get(name, (UNKNOWN_SIZE,) * 2)[0]) for name, _ in layers]))
        columns.append(("Out sizes", [str(sizes.get(name, (UNKNOWN_SIZE,) * 2)[1]) for name, _ in layers]))
    leftover = total - sum(layer_params)
    if leftover > 0:
        for header, cells in columns:
            cells.append(
                {" ": " ", "Name": "other params", "Params": human_readable_count(leftover)}.get(header, NOT_APPLICABLE)
            )
    modes = [module.training for module in model.modules()][1:]
    return Summary(
        columns=columns,
        total_parameters=total,
        trainable_parameters=trainable,
        model_size=sum(p.numel() * p.element_size() for p in parameters) / 1e6,
        training_modes={"train": modes.count(True), "eval": modes.count(False)},
        total_flops=total_flops,
    )


def _count(module: torch.nn.Module) -> int:
    import torch

    return sum(p.numel() for p in module.parameters() if not isinstance(p, torch.nn.parameter.UninitializedParameter))


def _forward_example(
    model: torch.nn.Module,
    example: Any,
    layers: list[tuple[str, torch.nn.Module]],
    sizes: dict[str, tuple[Any, Any]],
    flops: dict[str, int],
) -> int:
    """Run ``example`` through ``model`` in eval mode without gradients; record sizes and FLOPs per layer."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    def recorder(name: str) -> Any:
        def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            inputs = (*args, *kwargs.values())
            if name not in sizes:
                sizes[name] = (batch_shape(inputs[0] if len(inputs) == 1 else inputs), batch_shape(output))

        return hook

    handles = [
        layer.register_forward_hook(recorder(name), with_kwargs=True)
        for name, layer in layers
        if not isinstance(layer, torch.jit.ScriptModule)
    ]
    modes = [(module, module.training) for module in model.modules()]
    trainer = getattr(model, "_trainer", None)
    example = _to_device(model, trainer, example)
    counter = FlopCounterMode(display=False)
    forward_context = trainer._precision.forward_context() if trainer is not None else contextlib.nullcontext()
    model.eval()
    try:
        with torch.no_grad(), forward_context, counter:
            if isinstance(example, (list, tuple)):
                model(*example)
            elif isinstance(example, dict):
                model(**example)
            else:
                model(example)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    counts = counter.get_flop_counts()
    root = type(model).__name__
    for name, _ in layers:
        flops[name] = sum(counts.get(f"{root}.{name}", {}).values())
    return int(counter.get_total_flops())


def _to_device(model: torch.nn.Module, trainer: Trainer | None, example: Any) -> Any:
    """The example input as a batch would arrive: the model's batch-transfer hooks, then its device."""
    if trainer is None or not callable(getattr(model, "transfer_batch_to_device", None)):
        return example
    example = model.on_before_batch_transfer(example, 0)  # type: ignore[operator]
    example = model.transfer_batch_to_device(example, trainer.strategy.root_device, 0)  # type: ignore[operator]
    return model.on_after_batch_transfer(example, 0)  # type: ignore[operator]


def batch_shape(batch: Any) -> Any:
    """The shape of a tensor as a list, nested for lists and tuples; ``"?"`` for anything else."""
    if hasattr(batch, "shape"):
        return list(batch.shape)
    if isinstance(batch, (list, tuple)):
        return [batch_shape(item) for item in batch]
    return UNKNOWN_SIZE


def human_readable_count(number: int | float) -> str:
    """``123  ``, ``1.2 K``, ``3.0 M``, ``400 T``: three significant figures and a unit, as Lightning prints counts."""
    if number < 0:
        raise ValueError(f"human_readable_count() needs a count >= 0, got {number}")
    digits = int(math.floor(math.log10(number)) + 1) if number > 0 else 1
    groups = min(math.ceil(digits / 3), len(_UNITS))
    scaled = number * 10 ** (-3 * (groups - 1))
    if groups == 1 or scaled >= 100:
        return f"{int(scaled):,d} {_UNITS[groups - 1]}"
    return f"{scaled:,.1f} {_UNITS[groups - 1]}"


def format_model_size(megabytes: float) -> str:
    return f"{megabytes:,.3f}"


def format_summary_table(
    total_parameters: int,
    trainable_parameters: int,
    model_size: float,
    total_training_modes: dict[str, int],
    total_flops: int,
    *columns: tuple[str, list[str]],
) -> str:
    """The plain-text table: ``|``-separated columns between two rules, then one total per line."""
    rows = len(columns[0][1]) if columns else 0
    widths = [max([len(header), *(len(str(cell)) for cell in cells)]) for header, cells in columns]
    rule = "-" * (sum(widths) + 3 * (len(columns) + 1))
    lines = [" | ".join(f"{header:<{width}}" for (header, _), width in zip(columns, widths)), rule]
    for row in range(rows):
        lines.append(" | ".join(f"{cells[row]!s:<{width}}" for (_, cells), width in zip(columns, widths)))
    lines.append(rule)
    totals = (
        (human_readable_count(trainable_parameters), "Trainable params"),
        (human_readable_count(total_parameters - trainable_parameters), "Non-trainable params"),
        (human_readable_count(total_parameters), "Total params"),
        (format_model_size(model_size), "Total estimated model params size (MB)"),
        (total_training_modes["train"], "Modules in train mode"),
        (total_training_modes["eval"], "Modules in eval mode"),
        (human_readable_count(total_flops), "Total Flops"),
    )
    lines.extend(f"{value!s:<10}{label}" for value, label in totals)
    return "\n".join(lines)


class ModelSummary(Callback):
    """Print a summary of the model's layers and parameters when fit starts (on global rank 0).

    :param max_depth: how deep into nested modules the table goes: 1 lists the model's children,
        -1 every module, 0 turns the summary off.
    :param summarize_kwargs: passed on to :meth:`summarize` (e.g. ``header_style`` for the rich table).
    """

    def __init__(self, max_depth: int = 1, **summarize_kwargs: Any) -> None:
        self._max_depth = check_max_depth(max_depth)
        self._summarize_kwargs = summarize_kwargs

    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        if not self._max_depth:
            return
        summary = summarize(pl_module, self._max_depth)
        if trainer.is_global_zero:
            self.summarize(
                summary.columns,
                summary.total_parameters,
                summary.trainable_parameters,
                summary.model_size,
                summary.training_modes,
                total_flops=summary.total_flops,
                **self._summarize_kwargs,
            )

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        """Print the summary; override it to show it elsewhere (Lightning's signature)."""
        print(
            format_summary_table(
                total_parameters, trainable_parameters, model_size, total_training_modes, total_flops, *summary_data
            )
        )
