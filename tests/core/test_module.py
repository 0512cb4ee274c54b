"""The Module API: self.log and its reductions, hyperparameters, trainer access, dataloader indices."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.errors import MisconfigurationError
from ember.testing import TinyModel


class Logs(TinyModel):
    """Logs known values so reductions can be checked exactly: batch i of each epoch logs i."""

    def training_step(self, batch, batch_idx):
        self.log("step_only", float(batch_idx))
        self.log("both", float(batch_idx), on_step=True, on_epoch=True, prog_bar=True)
        self.log("summed", 1.0, on_step=False, on_epoch=True, reduce_fx="sum")
        self.log("largest", float(batch_idx), on_step=False, on_epoch=True, reduce_fx="max")
        self.log("smallest", float(batch_idx), on_step=False, on_epoch=True, reduce_fx=torch.min)
        self.log("median", float(batch_idx), on_step=False, on_epoch=True, reduce_fx=torch.median)
        self.log("hidden", 5.0, logger=False)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.log("val_value", float(batch_idx))


def test_log_keys_and_reductions(trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1, limit_train_batches=4, limit_val_batches=3, num_sanity_val_steps=0)
    trainer.fit(Logs())
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
    assert metrics["step_only"] == 3.0  # last step's value
    assert metrics["both_step"] == 3.0 and metrics["both_epoch"] == 1.5 and metrics["both"] == 1.5
    assert metrics["summed"] == 4.0 and metrics["largest"] == 3.0 and metrics["smallest"] == 0.0
    assert metrics["median"] == 1.0
    assert metrics["val_value"] == 1.0  # mean of 0, 1, 2
    assert "hidden" not in trainer.logged_metrics and metrics["hidden"] == 5.0
    assert set(trainer.progress_bar_metrics) == {"both_step", "both_epoch"}
    assert "both" not in trainer.logged_metrics and "both_epoch" in trainer.logged_metrics


def test_epoch_mean_is_weighted_by_batch_size(trainer_factory) -> None:
    class Uneven(TinyModel):
        def train_dataloader(self):
            x = torch.randn(10, 32)
            return DataLoader(TensorDataset(x, torch.zeros(10, 2)), batch_size=8)  # batches of 8 and 2

        def training_step(self, batch, batch_idx):
            self.log("value", float(batch_idx), on_step=False, on_epoch=True)
            self.log("explicit", float(batch_idx), on_step=False, on_epoch=True, batch_size=1)
            return super().training_step(batch, batch_idx)

    trainer = trainer_factory(max_epochs=1, limit_val_batches=0)
    trainer.fit(Uneven())
    assert float(trainer.callback_metrics["value"]) == pytest.approx((0 * 8 + 1 * 2) / 10)
    assert float(trainer.callback_metrics["explicit"]) == pytest.approx(0.5)


def test_log_dict(trainer_factory) -> None:
    class Model(TinyModel):
        def validation_step(self, batch, batch_idx):
            self.log_dict({"a": 1.0, "b": torch.tensor(2.0)}, prog_bar=True)

    trainer = trainer_factory()
    trainer.validate(Model(), verbose=False)
    assert trainer.progress_bar_metrics == {"a": 1.0, "b": 2.0}


def test_logging_where_it_is_not_allowed_names_the_hook(trainer_factory) -> None:
    class Model(TinyModel):
        def configure_optimizers(self):
            self.log("too_early", 1.0)
            return super().configure_optimizers()

    with pytest.raises(MisconfigurationError, match="'configure_optimizers'.*allowed in:.*training_step"):
        trainer_factory().fit(Model())


def test_on_step_logging_in_an_epoch_hook_is_refused(trainer_factory) -> None:
    class Model(TinyModel):
        def on_train_epoch_end(self):
            self.log("per_step", 1.0, on_step=True)

    with pytest.raises(MisconfigurationError, match="on_step=True.*'on_train_epoch_end'"):
        trainer_factory(max_epochs=1).fit(Model())


def test_a_non_scalar_value_is_refused(trainer_factory) -> None:
    class Model(TinyModel):
        def training_step(self, batch, batch_idx):
            self.log("vector", torch.ones(3))
            return super().training_step(batch, batch_idx)

    with pytest.raises(MisconfigurationError, match="'vector'.*shape \\(3,\\)"):
        trainer_factory(max_epochs=1).fit(Model())


def test_callbacks_can_log_through_the_module(trainer_factory, tiny_model) -> None:
    class Logger(ember.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            pl_module.log("from_callback", float(batch_idx), prog_bar=True)

        def on_validation_epoch_end(self, trainer, pl_module):
            pl_module.log("val_from_callback", 7.0)

    trainer = trainer_factory(callbacks=[Logger()], max_epochs=1, limit_train_batches=3)
    trainer.fit(tiny_model)
    assert trainer.progress_bar_metrics["from_callback"] == 2.0
    assert float(trainer.callback_metrics["val_from_callback"]) == 7.0


def test_several_validation_dataloaders_get_their_index(trainer_factory) -> None:
    seen: list[tuple[int, int]] = []

    class Model(TinyModel):
        def val_dataloader(self):
            return [super().val_dataloader(), super().val_dataloader()]

        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            seen.append((dataloader_idx, batch_idx))
            self.log("val_loss", float(dataloader_idx))

    trainer = trainer_factory(limit_val_batches=2)
    results = trainer.validate(Model(), verbose=False)
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert results == [{"val_loss/dataloader_idx_0": 0.0}, {"val_loss/dataloader_idx_1": 1.0}]


def test_save_hyperparameters_keeps_init_arguments(trainer_factory) -> None:
    class Model(TinyModel):
        def __init__(self, hidden: int = 3, lr: float = 0.5, backbone: object = None) -> None:
            super().__init__(lr=lr)
            self.save_hyperparameters(ignore=["backbone"])

    model = Model(hidden=7, backbone=object())
    assert dict(model.hparams) == {"hidden": 7, "lr": 0.5}
    assert model.hparams.lr == 0.5


def test_trainer_attributes_seen_from_the_module(trainer_factory, capsys) -> None:
    seen = {}

    class Model(TinyModel):
        def on_train_epoch_end(self):
            seen["epoch"], seen["step"], seen["device"] = self.current_epoch, self.global_step, self.device
            self.print("printed from rank zero")

    model = Model()
    with pytest.raises(RuntimeError, match="not attached to a Trainer"):
        model.trainer  # noqa: B018
    trainer = trainer_factory(max_epochs=1)
    trainer.fit(model)
    assert model.trainer is trainer
    assert seen == {"epoch": 0, "step": 8, "device": torch.device("cpu")}
    assert "printed from rank zero" in capsys.readouterr().out


def test_datamodule_hooks_and_from_datasets(trainer_factory) -> None:
    calls: list[str] = []

    class Data(ember.DataModule):
        def prepare_data(self):
            calls.append("prepare_data")

        def setup(self, stage):
            calls.append(f"setup:{stage}")

        def teardown(self, stage):
            calls.append(f"teardown:{stage}")

        def train_dataloader(self):
            return TinyModel().train_dataloader()

    trainer = trainer_factory(max_epochs=1, limit_val_batches=0)
    trainer.fit(TinyModel(), datamodule=Data())
    assert calls == ["prepare_data", "setup:fit", "teardown:fit"]
    from ember.testing.models import regression_data

    data = ember.DataModule.from_datasets(regression_data(16), test_dataset=regression_data(8, seed=1), batch_size=4)
    trainer.fit(TinyModel(), datamodule=data)
    results = trainer.test(TinyModel(), datamodule=data, verbose=False)
    assert set(results[0]) == {"test_loss"}


def test_a_fitted_model_can_be_copied_and_pickled_without_its_trainer(trainer_factory, tiny_model) -> None:
    import copy
    import pickle

    trainer_factory(max_epochs=1).fit(tiny_model)
    copied = copy.deepcopy(tiny_model)
    assert copied._trainer is None and torch.equal(copied.layer.weight, tiny_model.layer.weight)
    restored = pickle.loads(pickle.dumps(tiny_model))
    assert torch.equal(restored.layer.weight, tiny_model.layer.weight)


# ------------------------------------------------------------ module modes
class FrozenBackbone(TinyModel):
    """A backbone with batch norm the user froze with eval(); training_step records the modes it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.BatchNorm1d(32))
        self.backbone.eval()
        self.modes_seen: list[tuple[bool, bool, bool]] = []

    def forward(self, x):
        return self.layer(self.backbone(x))

    def training_step(self, batch, batch_idx):
        self.modes_seen.append((self.training, self.layer.training, self.backbone[1].training))
        return super().training_step(batch, batch_idx)


def test_a_submodule_in_eval_mode_stays_in_eval_mode_during_and_after_fit(trainer_factory) -> None:
    model = FrozenBackbone()
    running_mean = model.backbone[1].running_mean.clone()
    trainer = trainer_factory(max_epochs=2, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(model)
    assert set(model.modes_seen) == {(True, True, False)}
    assert (model.training, model.layer.training, model.backbone.training) == (True, True, False)
    assert torch.equal(model.backbone[1].running_mean, running_mean)
