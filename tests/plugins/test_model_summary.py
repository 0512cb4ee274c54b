"""ModelSummary: the table printed when fit starts, checked against Lightning's output for the same model."""

from __future__ import annotations

import pytest
import torch

import ember
from ember.callbacks import ModelSummary, RichModelSummary
from ember.errors import MisconfigurationError
from ember.plugins.model_summary import human_readable_count, summarize
from ember.testing import TinyModel


class Layered(TinyModel):
    """``layer`` is used by forward; ``net`` is not, and its BatchNorm is in eval mode; ``extra`` is a loose param."""

    def __init__(self, example: bool = True) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4))
        self.net[1].eval()
        self.extra = torch.nn.Parameter(torch.zeros(3))
        if example:
            self.example_input_array = torch.zeros(5, 32)


# Printed by Lightning 2.6.6's ModelSummary for the same model, the padding at line ends stripped.
LIGHTNING_DEPTH_1 = """\
  | Name         | Type       | Params | Mode  | FLOPs | In sizes | Out sizes
-----------------------------------------------------------------------------------
0 | layer        | Linear     | 66     | train | 640   | [5, 32]  | [5, 2]
1 | net          | Sequential | 20     | train | 0     | ?        | ?
  | other params | n/a        | 3      | n/a   | n/a   | n/a      | n/a
-----------------------------------------------------------------------------------
89        Trainable params
0         Non-trainable params
89        Total params
0.000     Total estimated model params size (MB)
3         Modules in train mode
1         Modules in eval mode
640       Total Flops
"""

LIGHTNING_ALL_LEVELS = """\
  | Name  | Type        | Params | Mode  | FLOPs | In sizes | Out sizes
-----------------------------------------------------------------------------
0 | layer | Linear      | 66     | train | 640   | [5, 32]  | [5, 2]
1 | net   | Sequential  | 20     | train | 0     | ?        | ?
2 | net.0 | Linear      | 12     | train | 0     | ?        | ?
3 | net.1 | BatchNorm1d | 8      | eval  | 0     | ?        | ?
-----------------------------------------------------------------------------
"""


def printed(capsys) -> str:
    """The captured output without the spaces that pad the table's last column."""
    return "".join(line.rstrip() + "\n" for line in capsys.readouterr().out.splitlines())


def fit_output(trainer_factory, capsys, model=None, **flags) -> str:
    flags.setdefault("enable_model_summary", None)
    trainer_factory(max_epochs=2, limit_train_batches=2, limit_val_batches=1, **flags).fit(model or Layered())
    return printed(capsys)


def test_prints_lightnings_table_once_when_fit_starts(trainer_factory, capsys) -> None:
    assert fit_output(trainer_factory, capsys) == LIGHTNING_DEPTH_1


def test_max_depth_minus_one_lists_every_module(trainer_factory, capsys) -> None:
    output = fit_output(trainer_factory, capsys, callbacks=[ModelSummary(max_depth=-1)])
    assert output.startswith(LIGHTNING_ALL_LEVELS)


def test_max_depth_2_stops_at_the_second_level(trainer_factory, capsys) -> None:
    class Deep(Layered):
        def __init__(self) -> None:
            super().__init__()
            self.deep = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(1, 1)))

    output = fit_output(trainer_factory, capsys, model=Deep(), callbacks=[ModelSummary(max_depth=2)])
    assert "| deep.0 " in output and "deep.0.0" not in output


def test_max_depth_0_prints_nothing(trainer_factory, capsys) -> None:
    assert fit_output(trainer_factory, capsys, callbacks=[ModelSummary(max_depth=0)]) == ""


def test_sizes_columns_only_with_an_example_input(trainer_factory, capsys) -> None:
    output = fit_output(trainer_factory, capsys, model=Layered(example=False))
    header = output.splitlines()[0]
    assert header.split(" | ")[1:] == ["Name        ", "Type      ", "Params", "Mode ", "FLOPs"]
    assert "0         Total Flops" in output


class Big(TinyModel):
    """A million parameters besides TinyModel's 66; ``frozen`` stops them training."""

    def __init__(self, frozen: bool = False) -> None:
        super().__init__()
        self.big = torch.nn.Linear(1000, 1000).requires_grad_(not frozen)


def test_frozen_parameters_count_as_non_trainable_and_size_is_in_megabytes(trainer_factory, capsys) -> None:
    output = fit_output(trainer_factory, capsys, model=Big(frozen=True))
    assert "66        Trainable params" in output
    assert "1.0 M     Non-trainable params" in output
    assert "1.0 M     Total params" in output
    assert "4.004     Total estimated model params size (MB)" in output


def test_float64_parameters_double_the_size(trainer_factory, capsys) -> None:
    output = fit_output(trainer_factory, capsys, model=Big(), precision="64-true")
    assert "8.009     Total estimated model params size (MB)" in output


def test_the_example_forward_leaves_modes_and_gradients_alone(trainer_factory) -> None:
    model = Layered()
    summary = summarize(model, max_depth=-1)
    assert model.training and model.layer.training and not model.net[1].training
    assert all(p.grad is None for p in model.parameters())
    assert summary.training_modes == {"train": 3, "eval": 1}


def test_not_printed_by_validate_test_or_predict(trainer_factory, capsys) -> None:
    trainer = trainer_factory(enable_model_summary=None)
    model = Layered()
    trainer.validate(model, verbose=False)
    trainer.test(model, verbose=False)
    trainer.predict(model)
    assert capsys.readouterr().out == ""


def test_the_default_trainer_prints_a_summary_and_a_users_replaces_it(tmp_path, capsys) -> None:
    options = dict(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False, enable_progress_bar=False)
    options.update(enable_checkpointing=False, default_root_dir=tmp_path)
    ember.Trainer(**options).fit(Layered())
    assert printed(capsys) == LIGHTNING_DEPTH_1
    trainer = ember.Trainer(callbacks=[ModelSummary(max_depth=-1)], **options)
    assert [type(c) for c in trainer.callbacks if isinstance(c, ModelSummary)] == [ModelSummary]
    trainer.fit(Layered())
    assert capsys.readouterr().out.count("Trainable params") == 1
    trainer = ember.Trainer(callbacks=[RichModelSummary()], **options)
    assert [type(c) for c in trainer.callbacks if isinstance(c, ModelSummary)] == [RichModelSummary]


def test_enable_model_summary_false_prints_nothing(trainer_factory, capsys) -> None:
    assert fit_output(trainer_factory, capsys, enable_model_summary=False) == ""


def test_summarize_can_be_overridden_to_send_the_summary_elsewhere(trainer_factory, capsys) -> None:
    received = {}

    class Collect(ModelSummary):
        @staticmethod
        def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes, **kw):
            received.update(dict(summary_data), total=total_parameters, modes=total_training_modes, **kw)

    fit_output(trainer_factory, capsys, callbacks=[Collect(extra_option=1)])
    assert received["Name"] == ["layer", "net", "other params"]
    assert received["total"] == 89 and received["modes"] == {"train": 3, "eval": 1}
    assert received["total_flops"] == 640 and received["extra_option"] == 1


@pytest.mark.parametrize(
    ("number", "text"),
    [(0, "0  "), (123, "123  "), (1234, "1.2 K"), (2e6, "2.0 M"), (3e9, "3.0 B"), (4e14, "400 T"), (5e15, "5,000 T")],
)
def test_counts_are_abbreviated_as_lightning_does(number, text) -> None:
    assert human_readable_count(number) == text


@pytest.mark.parametrize("depth", [-2, 1.5, True])
def test_max_depth_must_be_minus_one_zero_or_a_depth(depth) -> None:
    with pytest.raises(MisconfigurationError, match="max_depth"):
        ModelSummary(max_depth=depth)
