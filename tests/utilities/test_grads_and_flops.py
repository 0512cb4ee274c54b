"""grad_norm, measure_flops and model_summary.summarize, used as Lightning code uses them."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ember as pl
from ember.utilities import grad_norm, measure_flops
from ember.utilities.model_summary import ModelSummary, summarize


class LoggingGradNorms(pl.LightningModule):
    """Logs gradient norms before each optimizer step, as Lightning's docs suggest."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.logged: list[set[str]] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def on_before_optimizer_step(self, optimizer):
        norms = grad_norm(self.layer, norm_type=2)
        self.log_dict(norms)
        self.logged.append(set(norms))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_grad_norm_logged_in_on_before_optimizer_step(tmp_path):
    x = torch.randn(16, 4)
    model = LoggingGradNorms()
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(model, DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8))
    keys = {"grad_2.0_norm/weight", "grad_2.0_norm/bias", "grad_2.0_norm_total"}
    assert model.logged == [keys, keys]
    assert keys <= set(trainer.callback_metrics)


def test_grad_norm_values_and_total():
    layer = torch.nn.Linear(2, 1)
    layer.weight.grad = torch.tensor([[3.0, 4.0]])
    layer.bias.grad = torch.tensor([12.0])
    norms = grad_norm(layer, "inf", group_separator=".")
    assert norms["grad_inf_norm.weight"].item() == 4.0
    assert norms["grad_inf_norm_total"].item() == 12.0


def test_grad_norm_skips_parameters_without_gradients():
    assert grad_norm(torch.nn.Linear(2, 1), 2) == {}


@pytest.mark.parametrize("norm_type", [0, -1, "two"])
def test_grad_norm_names_a_bad_norm_type(norm_type):
    with pytest.raises(ValueError, match=rf"norm_type={norm_type!r}"):
        grad_norm(torch.nn.Linear(2, 1), norm_type)


def test_measure_flops_on_the_meta_device():
    with torch.device("meta"):
        model = torch.nn.Linear(16, 8, bias=False)
        x = torch.randn(4, 16)
    forward = measure_flops(model, lambda: model(x))
    assert forward == 2 * 4 * 16 * 8
    # backward computes the weight gradient only (x needs none): one more matmul of the same size
    assert measure_flops(model, lambda: model(x), lambda y: y.sum()) == 2 * forward


def test_summarize_gives_lightnings_summary_object():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    model[2].requires_grad_(False)
    summary = summarize(model)
    assert isinstance(summary, ModelSummary)
    assert summary.layer_names == ["0", "1", "2"]
    assert summary.layer_types == ["Linear", "ReLU", "Linear"]
    assert summary.param_nums == [16, 0, 5]
    assert (summary.total_parameters, summary.trainable_parameters) == (21, 16)
    table = str(summary)
    assert "Linear" in table and "Total params" in table


def test_summarize_goes_as_deep_as_asked():
    model = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 2)), torch.nn.Linear(2, 1))
    assert summarize(model, max_depth=-1).layer_names == ["0", "0.0", "1"]
