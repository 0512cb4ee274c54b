"""RichModelSummary: ModelSummary's numbers drawn as a rich table when fit starts."""

from __future__ import annotations

import torch

import ember
from ember.callbacks import ModelSummary, RichModelSummary
from ember.testing import TinyModel


class Layered(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4))
        self.net[1].eval()
        self.frozen = torch.nn.Linear(10, 10).requires_grad_(False)
        self.example_input_array = torch.zeros(5, 32)


def fit_output(trainer_factory, capsys, summary: ModelSummary) -> str:
    trainer = trainer_factory(callbacks=[summary], enable_model_summary=None, max_epochs=1, limit_train_batches=1)
    trainer.fit(Layered())
    return capsys.readouterr().out


def rows(output: str) -> list[list[str]]:
    """The table's body rows, one list of cells per row."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]


def test_prints_a_table_of_layers_with_the_same_columns_as_model_summary(trainer_factory, capsys) -> None:
    output = fit_output(trainer_factory, capsys, RichModelSummary())
    header = next(line for line in output.splitlines() if "Name" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "",
        "Name",
        "Type",
        "Params",
        "Mode",
        "FLOPs",
        "In sizes",
        "Out sizes",
    ]
    assert rows(output) == [
        ["0", "layer", "Linear", "66", "train", "640", "[5, 32]", "[5, 2]"],
        ["1", "net", "Sequential", "20", "train", "0", "?", "?"],
        ["2", "frozen", "Linear", "110", "train", "0", "?", "?"],
    ]


def test_prints_the_totals_under_the_table(trainer_factory, capsys) -> None:
    output = fit_output(trainer_factory, capsys, RichModelSummary())
    totals = [line.strip() for line in output.splitlines() if ": " in line and "│" not in line]
    assert totals == [
        "Trainable params: 86",
        "Non-trainable params: 110",
        "Total params: 196",
        "Total estimated model params size (MB): 0.001",
        "Modules in train mode: 4",
        "Modules in eval mode: 1",
        "Total FLOPs: 640",
    ]


def test_max_depth_minus_one_lists_nested_layers(trainer_factory, capsys) -> None:
    output = fit_output(trainer_factory, capsys, RichModelSummary(max_depth=-1))
    assert [row[1] for row in rows(output)] == ["layer", "net", "net.0", "net.1", "frozen"]
    assert rows(output)[3][4] == "eval"


def test_max_depth_0_prints_nothing(trainer_factory, capsys) -> None:
    assert fit_output(trainer_factory, capsys, RichModelSummary(max_depth=0)) == ""


def test_header_style_is_accepted(trainer_factory, capsys) -> None:
    assert "Name" in fit_output(trainer_factory, capsys, RichModelSummary(header_style="bold green"))


def test_it_replaces_the_default_summary(tmp_path, capsys) -> None:
    trainer = ember.Trainer(
        callbacks=[RichModelSummary()],
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Layered())
    output = capsys.readouterr().out
    assert output.count("Trainable params") == 1 and "Trainable params: 86" in output
