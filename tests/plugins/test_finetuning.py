"""BaseFinetuning and BackboneFinetuning: what trains when, at which LR, and the same after a resume."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

import ember
from ember.callbacks import BackboneFinetuning, BaseFinetuning
from ember.errors import EmberWarning, MisconfigurationError
from ember.testing.models import regression_data


class Transfer(ember.Module):
    """A backbone (Linear + BatchNorm) and a head; the optimizer sees only what is trainable at setup."""

    def __init__(self, lr: float = 0.1, momentum: float = 0.9, all_params: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, 2)
        self.lr, self.momentum, self.all_params = lr, momentum, all_params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = self.parameters() if self.all_params else filter(lambda p: p.requires_grad, self.parameters())
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(regression_data(64, 32, seed=0), batch_size=8)  # in order: runs repeat exactly


class Record(ember.Callback):
    """Per epoch (at its end): requires_grad of each parameter, param groups (LR, parameter names), weights."""

    def __init__(self) -> None:
        self.trainable: dict[int, dict[str, bool]] = {}
        self.groups: dict[int, list[tuple[float, list[str]]]] = {}
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch
        names = {p: n for n, p in pl_module.named_parameters()}
        self.trainable[epoch] = {n: p.requires_grad for n, p in pl_module.named_parameters()}
        self.groups[epoch] = [
            (group["lr"], [names[p] for p in group["params"]]) for group in trainer.optimizers[0].param_groups
        ]
        self.weights[epoch] = {n: p.detach().clone() for n, p in pl_module.named_parameters()}


HEAD = ["head.weight", "head.bias"]
BN = ["backbone.1.weight", "backbone.1.bias"]
LINEAR = ["backbone.0.weight", "backbone.0.bias"]


def fit(trainer_factory, callback, epochs: int, model: Transfer | None = None, **kwargs: Any) -> Record:
    record = Record()
    trainer_factory(callbacks=[callback, record], max_epochs=epochs, **kwargs).fit(model or Transfer())
    return record


@pytest.mark.filterwarnings("ignore:the training loss is")  # the growing lr diverges; only lrs are checked
def test_backbone_trains_from_the_unfreeze_epoch_at_a_growing_lr_capped_at_the_head_lr(trainer_factory) -> None:
    record = fit(trainer_factory, BackboneFinetuning(unfreeze_backbone_at_epoch=2), epochs=7)
    for epoch in (0, 1):
        assert [record.trainable[epoch][n] for n in LINEAR] == [False, False]
        assert [record.trainable[epoch][n] for n in BN] == [True, True]  # train_bn: batch norms keep training
        assert record.groups[epoch] == [(0.1, BN + HEAD)]
    assert all(record.trainable[2].values())
    assert [lr for lr, _ in record.groups[2]] == pytest.approx([0.1, 0.01])  # 0.1 * backbone_initial_ratio_lr
    assert record.groups[2][1][1] == LINEAR  # the batch norm was optimized all along
    backbone_lrs = [record.groups[epoch][1][0] for epoch in range(2, 7)]
    assert backbone_lrs == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.1])  # doubled each epoch, aligned at 0.1
    weight = "backbone.0.weight"
    assert torch.equal(record.weights[0][weight], record.weights[1][weight])
    assert not torch.equal(record.weights[1][weight], record.weights[2][weight])


def test_backbone_initial_lr_lambda_func_and_no_alignment(trainer_factory) -> None:
    callback = BackboneFinetuning(
        unfreeze_backbone_at_epoch=0, backbone_initial_lr=0.05, lambda_func=lambda epoch: 3.0, should_align=False
    )
    record = fit(trainer_factory, callback, epochs=3)
    assert [record.groups[epoch][1][0] for epoch in range(3)] == pytest.approx([0.05, 0.15, 0.45])


def test_without_train_bn_batch_norms_stay_frozen_and_out_of_the_new_group(trainer_factory) -> None:
    model = Transfer()
    statistics = model.backbone[1].running_mean.clone()
    record = fit(trainer_factory, BackboneFinetuning(unfreeze_backbone_at_epoch=1, train_bn=False), 1, model)
    assert [record.trainable[0][n] for n in BN + LINEAR] == [False] * 4
    assert record.groups[0] == [(0.1, HEAD)]
    assert torch.equal(model.backbone[1].running_mean, statistics)  # frozen: no running statistics either

    model = Transfer()
    record = fit(trainer_factory, BackboneFinetuning(unfreeze_backbone_at_epoch=1, train_bn=False), 2, model)
    assert record.groups[1][1][1] == LINEAR
    assert model.backbone[1].track_running_stats


def test_verbose_logs_both_learning_rates(trainer_factory, caplog) -> None:
    fit(trainer_factory, BackboneFinetuning(unfreeze_backbone_at_epoch=1, verbose=True, rounding=4), epochs=3)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Current lr")]
    assert lines == ["Current lr: 0.1, Backbone lr: 0.01", "Current lr: 0.1, Backbone lr: 0.02"]


class UnfreezeHead(BaseFinetuning):
    """A custom finetuning: the head is frozen, then joins at ``epoch`` with the given ``lr``."""

    def __init__(self, epoch: int, lr: float | None = None, initial_denom_lr: float = 10.0) -> None:
        super().__init__()
        self.epoch, self.lr, self.initial_denom_lr = epoch, lr, initial_denom_lr

    def freeze_before_training(self, pl_module) -> None:
        self.freeze(pl_module.head)

    def finetune_function(self, pl_module, epoch, optimizer) -> None:
        if epoch == self.epoch:
            self.unfreeze_and_add_param_group(
                pl_module.head, optimizer, lr=self.lr, initial_denom_lr=self.initial_denom_lr
            )


@pytest.mark.parametrize(("lr", "denom", "expected"), [(None, 4.0, 0.025), (0.3, 4.0, 0.3)])
def test_unfreeze_and_add_param_group_lr_or_first_group_lr_over_initial_denom(
    trainer_factory, lr, denom, expected
) -> None:
    record = fit(trainer_factory, UnfreezeHead(1, lr, denom), epochs=2)
    assert record.trainable[0]["head.weight"] is False
    assert record.groups[0] == [(0.1, LINEAR + BN)]
    assert record.groups[1][1] == (pytest.approx(expected), HEAD)


def test_unfreezing_parameters_the_optimizer_already_holds_warns_and_adds_no_group(trainer_factory) -> None:
    with pytest.warns(EmberWarning, match=r"already in a param group of SGD.*filter\(lambda p: p.requires_grad"):
        record = fit(trainer_factory, UnfreezeHead(1), epochs=2, model=Transfer(all_params=True))
    assert len(record.groups[1]) == 1


def test_a_model_without_a_backbone_is_refused(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[BackboneFinetuning()])
    with pytest.raises(MisconfigurationError, match="attribute `backbone`"):
        trainer.fit(ember.testing.TinyModel())


def test_base_finetuning_needs_both_methods(trainer_factory) -> None:
    with pytest.raises(NotImplementedError, match="freeze_before_training"):
        trainer_factory(callbacks=[BaseFinetuning()]).fit(Transfer())


@pytest.mark.parametrize("callback", [BackboneFinetuning, UnfreezeHead], ids=["backbone", "custom"])
def test_a_resumed_run_has_the_param_groups_flags_and_weights_of_the_uninterrupted_one(
    trainer_factory, tmp_path, callback
) -> None:
    def make() -> BaseFinetuning:
        return BackboneFinetuning(unfreeze_backbone_at_epoch=1) if callback is BackboneFinetuning else UnfreezeHead(1)

    full = fit(trainer_factory, make(), epochs=4)

    first = trainer_factory(callbacks=[make()], max_epochs=2)
    first.fit(Transfer())
    path = tmp_path / "epoch2.ckpt"
    first.save_checkpoint(path)
    resumed = Record()
    trainer = trainer_factory(callbacks=[make(), resumed], max_epochs=4)
    trainer.fit(Transfer(), ckpt_path=path)

    for epoch in (2, 3):
        assert resumed.trainable[epoch] == full.trainable[epoch]
        assert resumed.groups[epoch] == full.groups[epoch]
        for name, weight in full.weights[epoch].items():
            torch.testing.assert_close(resumed.weights[epoch][name], weight, msg=name)
    assert len(trainer.optimizers[0].param_groups) == 2


def test_the_checkpointed_state_names_groups_by_parameter_name(trainer_factory, tmp_path) -> None:
    callback = BackboneFinetuning(unfreeze_backbone_at_epoch=1)
    trainer = trainer_factory(callbacks=[callback], max_epochs=3)
    trainer.fit(Transfer())
    state = callback.state_dict()
    groups = state["internal_optimizer_metadata"][0]
    assert [group["params"] for group in groups] == [BN + HEAD, LINEAR]
    assert groups[1]["lr"] == pytest.approx(0.01)  # as added; later LRs come back with the optimizer state
    assert state["previous_backbone_lr"] == pytest.approx(0.02)
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    saved = torch.load(tmp_path / "c.ckpt", weights_only=True)["callbacks"][callback.state_key]
    assert saved["internal_optimizer_metadata"][0][1]["params"] == LINEAR


def test_freeze_keeps_batch_norms_trainable_when_asked() -> None:
    model = Transfer()
    BaseFinetuning.freeze(model.backbone, train_bn=True)
    assert [p.requires_grad for p in model.backbone.parameters()] == [False, False, True, True]
    assert model.backbone[1].track_running_stats
    BaseFinetuning.freeze(model.backbone, train_bn=False)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not model.backbone[1].track_running_stats
    assert list(BaseFinetuning.filter_params(model, requires_grad=True)) == list(model.head.parameters())
    BaseFinetuning.make_trainable([model.backbone])
    assert all(p.requires_grad for p in model.parameters())
    assert model.backbone[1].track_running_stats


def test_flatten_modules_gives_leaves_and_parents_holding_parameters() -> None:
    class Parent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))
            self.child = torch.nn.Linear(2, 2)

    parent = Parent()
    modules = torch.nn.ModuleDict({"a": torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), "b": parent})
    flat = BaseFinetuning.flatten_modules(modules)
    assert [type(m).__name__ for m in flat] == ["Linear", "ReLU", "Parent", "Linear"]
