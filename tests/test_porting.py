"""Lightning code ports by changing its imports: small programs written as Lightning users write them.

Each test is a program in the style of public Lightning code (the GAN
example's ``training_step(self, batch)``, a callback that swaps in a
scheduler, a custom progress bar) with ``import ember as pl`` and ember's
module paths where Lightning's were.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ember as pl
from ember.callbacks import Callback, TQDMProgressBar
from ember.callbacks.progress.tqdm_progress import Tqdm
from ember.utilities.types import LRSchedulerConfig


def regression_loader(batch_size: int = 8, samples: int = 32) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, 4, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=batch_size)


def lightning_trainer(tmp_path, **flags) -> pl.Trainer:
    options = dict(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    options.update(flags)
    return pl.Trainer(**options)


class LitRegressor(pl.LightningModule):
    def __init__(self, lr: float = 0.1):
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


# ------------------------------------------------------------------ names
def test_lightning_class_names_are_embers_classes():
    assert pl.LightningModule is pl.Module
    assert pl.LightningDataModule is pl.DataModule
    assert pl.Callback is Callback
    assert pl.callbacks.EarlyStopping is pl.callbacks.EarlyStopping
    assert pl.seed_everything(7) == 7


def test_subpackages_are_attributes_of_ember_and_load_no_torch():
    program = (
        "import sys, ember\n"
        "for name in ('callbacks', 'loggers', 'utilities', 'cli', 'strategies'):\n"
        "    getattr(ember, name)\n"
        "assert 'torch' not in sys.modules, 'a subpackage imported torch'\n"
        "assert ember.callbacks.EarlyStopping.__name__ == 'EarlyStopping'\n"
        "assert ember.loggers.CSVLogger.__name__ == 'CSVLogger'\n"
        "assert ember.strategies.SingleDeviceStrategy.__name__ == 'SingleDeviceStrategy'\n"
        "assert callable(ember.utilities.rank_zero_only)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_lazy_names_are_listed_before_loading_and_kept_after():
    program = (
        "import sys, ember, ember.callbacks, ember.core, ember.strategies, ember.testing, ember.utilities\n"
        "for module, name in ((ember, 'Trainer'), (ember.callbacks, 'EarlyStopping'), (ember.core, 'LightningModule'),\n"
        "                     (ember.strategies, 'DDPStrategy'), (ember.testing, 'TinyModel'),\n"
        "                     (ember.utilities, 'grad_norm')):\n"
        "    assert name in dir(module) and name not in vars(module), (module, name)\n"
        "    try:\n"
        "        module.no_such_name\n"
        "    except AttributeError as error:\n"
        "        assert str(error).startswith(f\"module '{module.__name__}' has no attribute 'no_such_name'\"), error\n"
        "assert 'torch' not in sys.modules, 'dir() or a missing name imported torch'\n"
        "assert ember.Trainer is vars(ember)['Trainer'] and ember.LightningModule is ember.Module\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cli_lightning_logo_prints_a_banner(capsys):
    pl.cli_lightning_logo()
    assert "ember" in capsys.readouterr().out


def test_lightning_callback_module_paths_are_the_plugins_modules():
    from ember.callbacks.callback import Callback as BaseCallback
    from ember.callbacks.early_stopping import EarlyStopping
    from ember.callbacks.model_checkpoint import ModelCheckpoint
    from ember.callbacks.progress import RichProgressBar

    assert BaseCallback is pl.Callback
    assert EarlyStopping is pl.callbacks.EarlyStopping
    assert ModelCheckpoint is pl.callbacks.ModelCheckpoint
    assert RichProgressBar is pl.callbacks.RichProgressBar
    assert pl.callbacks.progress.tqdm_progress.TQDMProgressBar is TQDMProgressBar


# ------------------------------------------------------------- signatures
class GAN(pl.LightningModule):
    """Lightning's GAN example in miniature: manual optimization, ``training_step(self, batch)``."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.generator = torch.nn.Linear(2, 4)
        self.discriminator = torch.nn.Linear(4, 1)
        self.seen = 0

    def training_step(self, batch):
        real, _ = batch
        g_opt, d_opt = self.optimizers()
        fake = self.generator(torch.randn(real.shape[0], 2))
        self.toggle_optimizer(g_opt)
        g_loss = -self.discriminator(fake).mean()
        self.manual_backward(g_loss)
        g_opt.step()
        g_opt.zero_grad()
        self.untoggle_optimizer(g_opt)
        self.toggle_optimizer(d_opt)
        d_loss = self.discriminator(fake.detach()).mean() - self.discriminator(real).mean()
        self.manual_backward(d_loss)
        d_opt.step()
        d_opt.zero_grad()
        self.untoggle_optimizer(d_opt)
        self.seen += 1

    def configure_optimizers(self):
        return [
            torch.optim.Adam(self.generator.parameters(), lr=1e-3),
            torch.optim.Adam(self.discriminator.parameters(), lr=1e-3),
        ]


def test_training_step_without_batch_idx_trains(tmp_path):
    model = GAN()
    trainer = lightning_trainer(tmp_path)
    trainer.fit(model, regression_loader())
    assert model.seen == 4
    assert trainer.global_step == 8  # two optimizer steps per batch


class NoIndices(LitRegressor):
    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def training_step(self, batch):
        return super().training_step(batch, None)

    def validation_step(self, batch):
        self.calls.append("validation_step")

    def test_step(self, batch):
        self.calls.append("test_step")

    def predict_step(self, batch):
        return self.net(batch[0])

    def on_train_batch_start(self, batch):
        self.calls.append("on_train_batch_start")

    def on_train_batch_end(self, outputs, batch):
        self.calls.append("on_train_batch_end")

    def on_validation_batch_end(self, outputs, batch):
        self.calls.append("on_validation_batch_end")


def test_steps_and_batch_hooks_may_leave_out_the_indices(tmp_path):
    model = NoIndices()
    trainer = lightning_trainer(tmp_path, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0)
    trainer.fit(model, regression_loader(), regression_loader())
    trainer.test(model, regression_loader(), verbose=False)
    predictions = trainer.predict(model, regression_loader(samples=16))
    assert model.calls == [
        "on_train_batch_start",
        "on_train_batch_end",
        "validation_step",
        "on_validation_batch_end",
        "test_step",
        "test_step",
        "test_step",
        "test_step",
    ]
    assert [p.shape for p in predictions] == [torch.Size([8, 1])] * 2


class PerLoader(LitRegressor):
    def __init__(self):
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.seen.append((batch_idx, dataloader_idx))


def test_dataloader_idx_reaches_a_step_that_takes_it(tmp_path):
    model = PerLoader()
    trainer = lightning_trainer(tmp_path)
    trainer.validate(model, [regression_loader(samples=16), regression_loader(samples=8)], verbose=False)
    assert model.seen == [(0, 0), (1, 0), (0, 1)]


def test_a_step_without_dataloader_idx_runs_over_several_loaders(tmp_path):
    class Shared(LitRegressor):
        batches = 0

        def validation_step(self, batch, batch_idx):
            self.batches += 1
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    model = Shared()
    results = lightning_trainer(tmp_path).validate(model, [regression_loader(), regression_loader()], verbose=False)
    assert model.batches == 8
    assert set(results[0]) == {"val_loss/dataloader_idx_0"}


# ---------------------------------------------------------- strategy views
def test_strategy_holds_what_the_trainer_shows(tmp_path):
    views = {}

    class Inspect(Callback):
        def on_train_start(self, trainer, pl_module):
            strategy = trainer.strategy
            views.update(
                optimizers=strategy.optimizers is trainer.optimizers,
                configs=strategy.lr_scheduler_configs is trainer.lr_scheduler_configs,
                module=strategy.lightning_module is pl_module,
                model=strategy.model is trainer.model,
                device=strategy.root_device == torch.device("cpu"),
                zero=strategy.is_global_zero,
                world=strategy.world_size,
                precision=strategy.precision_plugin is not None,
            )

    model = LitRegressor()
    lightning_trainer(tmp_path, callbacks=[Inspect()], accelerator="cpu").fit(model, regression_loader())
    assert views == dict(
        optimizers=True, configs=True, module=True, model=True, device=True, zero=True, world=1, precision=True
    )


class WarmupScheduler(Callback):
    """A callback from a public repository's pattern: swap in a per-step schedule when training starts."""

    def __init__(self, through_strategy: bool):
        self.through_strategy = through_strategy

    def on_train_start(self, trainer, pl_module):
        optimizer = trainer.optimizers[0]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** (step + 1))
        configs = [LRSchedulerConfig(scheduler, interval="step")]
        if self.through_strategy:
            trainer.strategy.lr_scheduler_configs = configs
        else:
            trainer.lr_scheduler_configs = configs


@pytest.mark.parametrize("through_strategy", [True, False], ids=["strategy", "trainer"])
def test_a_scheduler_assigned_at_train_start_steps(tmp_path, through_strategy):
    model = LitRegressor(lr=1.0)
    trainer = lightning_trainer(tmp_path, callbacks=[WarmupScheduler(through_strategy)])
    trainer.fit(model, regression_loader())  # 4 optimizer steps
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.5**5)
    assert len(trainer.strategy.lr_scheduler_configs) == 1


def test_an_optimizer_swapped_at_train_start_is_what_the_model_steps(tmp_path):
    class Manual(LitRegressor):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.stepped = []

        def training_step(self, batch, batch_idx):
            optimizer = self.optimizers()
            loss = super().training_step(batch, batch_idx)
            self.manual_backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            self.stepped.append(optimizer.optimizer)

    class SwapOptimizer(Callback):
        def on_train_start(self, trainer, pl_module):
            trainer.strategy.optimizers = [torch.optim.Adam(pl_module.parameters(), lr=1e-2)]

    model = Manual()
    trainer = lightning_trainer(tmp_path, callbacks=[SwapOptimizer()])
    trainer.fit(model, regression_loader())
    assert {type(optimizer) for optimizer in model.stepped} == {torch.optim.Adam}
    assert trainer.global_step == 4


# ------------------------------------------------------------ progress bar
class LitProgressBar(TQDMProgressBar):
    """The customisation Lightning's docs show: a quieter validation bar built from ``Tqdm``."""

    def init_validation_tqdm(self):
        return Tqdm(desc="checking", disable=True, leave=False)

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

    def on_train_epoch_end(self, trainer, pl_module):
        self.bar_type = type(self.train_progress_bar)
        super().on_train_epoch_end(trainer, pl_module)


def test_a_custom_tqdm_bar_ports(tmp_path, capsys):
    bar = LitProgressBar()
    trainer = lightning_trainer(tmp_path, callbacks=[bar], enable_progress_bar=True)
    trainer.fit(LitRegressor(), regression_loader(), regression_loader())
    assert bar.bar_type is Tqdm
    out = capsys.readouterr().out
    assert "Epoch 0" in out and "checking" not in out


# ------------------------------------------------------ LightningModule API
def test_freeze_and_unfreeze_a_module():
    model = LitRegressor()
    model.freeze()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    model.unfreeze()
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_ranks_and_all_gather_inside_a_step(tmp_path):
    class Gathering(LitRegressor):
        gathered = None

        def validation_step(self, batch, batch_idx):
            if self.global_rank == 0 and self.local_rank == 0 and not self.on_gpu:
                self.gathered = self.all_gather({"loss": torch.tensor(0.5), "count": 3})

    model = Gathering()
    lightning_trainer(tmp_path).validate(model, regression_loader(), verbose=False)
    assert model.gathered["loss"].item() == 0.5 and model.gathered["count"].item() == 3


def test_a_disabled_tqdm_bar_from_init_validation_tqdm_is_left_alone(tmp_path, capsys):
    class Quiet(TQDMProgressBar):
        def init_validation_tqdm(self):
            return Tqdm(disable=True)

    trainer = lightning_trainer(tmp_path, callbacks=[Quiet()], enable_progress_bar=True, num_sanity_val_steps=0)
    trainer.fit(LitRegressor(), regression_loader(), regression_loader())
    assert "Validation" not in capsys.readouterr().out


def test_lightning_core_paths(tmp_path):
    from ember.core import LightningDataModule, LightningModule
    from ember.core.mixins import HyperparametersMixin
    from ember.core.optimizer import LightningOptimizer

    assert LightningModule is pl.LightningModule and LightningDataModule is pl.LightningDataModule
    assert issubclass(pl.LightningModule, HyperparametersMixin)

    class Manual(LitRegressor):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.wrapped = None

        def training_step(self, batch, batch_idx):
            self.wrapped = isinstance(self.optimizers(), LightningOptimizer)

    model = Manual()
    lightning_trainer(tmp_path, limit_train_batches=1).fit(model, regression_loader())
    assert model.wrapped
