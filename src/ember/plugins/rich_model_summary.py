"""RichModelSummary: ModelSummary's table and totals drawn as a rich table.

The numbers come from :func:`ember.plugins.model_summary.summarize`, so both
summaries always agree; only the drawing differs. Being a ModelSummary, a
RichModelSummary in ``callbacks`` replaces the default summary.
"""

from __future__ import annotations

from typing import Any

from ember.plugins.model_summary import ModelSummary, format_model_size, human_readable_count


class RichModelSummary(ModelSummary):
    """Print the model summary with rich when fit starts.

    :param max_depth: how deep into nested modules the table goes (-1: all, 0: off).
    :param summarize_kwargs: ``header_style`` sets the style of the table header (``"bold magenta"``).
    """

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
        from rich import get_console
        from rich.table import Table

        right_aligned = {"Params", "Params per Device", "FLOPs", "In sizes", "Out sizes"}
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for header, _ in summary_data:
            style = "dim" if header == " " else ("white" if header in ("In sizes", "Out sizes") else None)
            table.add_column(
                header,
                justify="right" if header in right_aligned else "left",
                no_wrap=header == "Name",
                style=style,
            )
        for row in zip(*(cells for _, cells in summary_data)):
            table.add_row(*row)
        totals = Table.grid(expand=True)
        totals.add_column()
        for label, value in (
            ("Trainable params", human_readable_count(trainable_parameters)),
            ("Non-trainable params", human_readable_count(total_parameters - trainable_parameters)),
            ("Total params", human_readable_count(total_parameters)),
            ("Total estimated model params size (MB)", format_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
            ("Total FLOPs", human_readable_count(total_flops)),
        ):
            totals.add_row(f"[bold]{label}[/]: {value!s:<10}")
        console = get_console()
        console.print(table)
        console.print(totals)
