"""LearningRateFinder: the LR it suggests on a problem with known good LRs, its records and plot, a clean run after."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.callbacks import LearningRateFinder
from ember.errors import EmberWarning, MisconfigurationError
from ember.testing import make_trainer


class Saddle(ember.Module):
    """Least squares through a product of two linear layers started near zero.

    The loss sits on a plateau while the LR is too small to leave the saddle
    at the origin within the steps given, then falls to the least-squares
    optimum, and diverges for LRs past about 2: the good LRs are known.
    """

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, batch_size: int = 256) -> None:
        super().__init__()
        self.save_hyperparameters()
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(256, 4, generator=generator)
        self.y = torch.sin(self.x @ torch.randn(4, 1, generator=generator))
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.Linear(8, 1, bias=False))
        for parameter in self.net.parameters():
            torch.nn.init.normal_(parameter, std=0.01)

    def loss(self) -> float:
        with torch.no_grad():
            return torch.nn.functional.mse_loss(self.net(self.x), self.y).item()

    def optimum(self) -> float:
        solution = torch.linalg.lstsq(self.x, self.y).solution
        return torch.nn.functional.mse_loss(self.x @ solution, self.y).item()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=self.hparams.momentum)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=self.hparams.batch_size, shuffle=True)


def find(trainer_factory, finder: LearningRateFinder, model: ember.Module | None = None, **kwargs: Any):
    model = model or Saddle()
    options = {"max_epochs": -1, "max_steps": 1, **kwargs}
    trainer = trainer_factory(callbacks=[finder], **options)
    trainer.fit(model)
    return trainer, model


def trained_loss(trainer_factory, lr: float) -> float:
    model = Saddle(lr=lr)
    trainer_factory(max_epochs=-1, max_steps=100).fit(model)
    return model.loss()


@pytest.fixture(scope="module")
def suggested(tmp_path_factory) -> float:
    finder = LearningRateFinder(min_lr=1e-4, max_lr=100, num_training_steps=100, update_attr=False)
    trainer = make_trainer(tmp_path_factory.mktemp("lr"), max_epochs=-1, max_steps=1, callbacks=[finder])
    trainer.fit(Saddle())
    assert finder.optimal_lr is not None
    lr = finder.optimal_lr.suggestion()
    assert lr is not None
    return lr


@pytest.mark.filterwarnings("ignore:the training loss is")  # the last run diverges on purpose
def test_the_suggestion_trains_to_the_optimum_where_far_smaller_lrs_stall_and_larger_diverge(
    trainer_factory, suggested
) -> None:
    optimum = Saddle().optimum()
    assert 0.1 < suggested < 2
    assert trained_loss(trainer_factory, suggested) == pytest.approx(optimum, rel=1e-3)
    assert trained_loss(trainer_factory, suggested / 100) > 1.3 * optimum  # still on the plateau
    assert not math.isfinite(trained_loss(trainer_factory, suggested * 10))  # diverged


class LeastSquares(ember.Module):
    """Full-batch linear least squares whose loss Hessian has eigenvalues from 0.8 to 3.6.

    SGD converges fastest near lr = 2 / (0.8 + 3.6) = 0.45 and diverges above
    2 / 3.6 = 0.55; far below the best LR the loss hardly moves in 100 steps.
    """

    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        generator = torch.Generator().manual_seed(0)
        samples, features = 256, 8
        left, _ = torch.linalg.qr(torch.randn(samples, features, generator=generator))
        right, _ = torch.linalg.qr(torch.randn(features, features, generator=generator))
        eigenvalues = torch.linspace(0.8, 3.6, features)
        self.x = left @ torch.diag((eigenvalues * samples / 2).sqrt()) @ right.T
        noise = 0.1 * torch.randn(samples, 1, generator=generator)
        self.y = self.x @ torch.randn(features, 1, generator=generator) + noise
        self.layer = torch.nn.Linear(features, 1, bias=False)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=256)


def test_the_suggestion_is_on_the_steepest_part_of_the_smoothed_loss_curve(trainer_factory) -> None:
    finder = LearningRateFinder(min_lr=1e-5, max_lr=10, update_attr=False)
    find(trainer_factory, finder, LeastSquares(lr=1e-3))
    lr = finder.optimal_lr.suggestion()
    assert 1e-3 < lr < 0.55  # above the LR the model came with, below divergence
    lrs, losses = finder.optimal_lr.results["lr"], finder.optimal_lr.results["loss"]
    slopes = [
        (losses[i + 1] - losses[i - 1]) / (math.log(lrs[i + 1]) - math.log(lrs[i - 1])) for i in range(1, len(lrs) - 1)
    ]
    index = lrs.index(lr)
    assert slopes[index - 1] <= 0.9 * min(slopes)  # the loss falls there at least 90% as fast as anywhere


def test_update_attr_writes_the_suggestion_to_hparams_and_the_optimizer_before_other_callbacks_run(
    trainer_factory,
) -> None:
    seen: dict[str, float] = {}

    class Look(ember.Callback):
        def on_fit_start(self, trainer, pl_module) -> None:
            seen["hparams"] = pl_module.hparams.lr
            seen["optimizer"] = trainer.optimizers[0].param_groups[0]["lr"]

    finder = LearningRateFinder(min_lr=1e-4, max_lr=100, num_training_steps=100)
    model = Saddle()
    trainer_factory(callbacks=[Look(), finder], max_epochs=-1, max_steps=1).fit(model)
    suggestion = finder.optimal_lr.suggestion()
    assert seen == {"hparams": suggestion, "optimizer": suggestion}
    assert model.hparams.lr == suggestion


def test_results_hold_one_lr_and_one_smoothed_loss_per_step(trainer_factory) -> None:
    finder = LearningRateFinder(min_lr=1e-4, max_lr=1e-1, num_training_steps=20, update_attr=False)
    find(trainer_factory, finder)
    lrs, losses = finder.optimal_lr.results["lr"], finder.optimal_lr.results["loss"]
    assert len(lrs) == len(losses) == 20
    ratio = (1e-1 / 1e-4) ** (1 / 20)
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[1:] == pytest.approx([1e-4 * ratio ** (step + 1) for step in range(1, 20)])
    assert lrs[-1] == pytest.approx(1e-1)
    assert losses[0] == pytest.approx(Saddle().loss(), rel=1e-5)  # nothing trained yet; bias-corrected average


def test_linear_mode_grows_the_lr_linearly(trainer_factory) -> None:
    finder = LearningRateFinder(min_lr=0.0, max_lr=0.5, num_training_steps=10, mode="linear", update_attr=False)
    find(trainer_factory, finder)
    assert finder.optimal_lr.results["lr"] == pytest.approx([0.0] + [0.05 * (step + 1) for step in range(1, 10)])


def test_a_diverging_loss_stops_the_test_early_unless_told_not_to(trainer_factory) -> None:
    early = LearningRateFinder(min_lr=1e-4, max_lr=100, num_training_steps=100, update_attr=False)
    find(trainer_factory, early)
    never = LearningRateFinder(
        min_lr=1e-4, max_lr=100, num_training_steps=100, update_attr=False, early_stop_threshold=None
    )
    find(trainer_factory, never)
    assert 50 < len(early.optimal_lr.results["loss"]) < 100
    assert len(never.optimal_lr.results["loss"]) == 100
    assert not math.isfinite(never.optimal_lr.results["loss"][-1])


def test_the_run_after_the_test_is_the_run_without_it(trainer_factory) -> None:
    """Weights, optimizer state (momentum), param-group LRs, random state and global_step are put back."""
    results = []
    for finder in (LearningRateFinder(num_training_steps=30, update_attr=False), None):
        model = Saddle(lr=0.05, momentum=0.9, batch_size=32)
        torch.manual_seed(3)
        trainer = trainer_factory(callbacks=[finder] if finder else [], max_epochs=2, limit_train_batches=4)
        trainer.fit(model)
        assert trainer.global_step == 8
        assert trainer.optimizers[0].param_groups[0]["lr"] == 0.05
        assert "initial_lr" not in trainer.optimizers[0].param_groups[0]
        results.append([p.detach().clone() for p in model.parameters()])
    for searched, plain in zip(*results):
        assert torch.equal(searched, plain)


def test_plot_returns_a_figure_that_saves_as_png(trainer_factory, tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    finder = LearningRateFinder(min_lr=1e-4, max_lr=100, num_training_steps=100, update_attr=False)
    find(trainer_factory, finder)
    figure = finder.optimal_lr.plot(suggest=True)
    path = tmp_path / "lr.png"
    figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = figure.axes[0]
    assert axes.get_xscale() == "log"
    assert axes.get_xlabel() == "Learning rate"
    marker = axes.lines[1]  # the red dot on the suggestion
    assert marker.get_xdata()[0] == finder.optimal_lr.suggestion()

    import matplotlib.pyplot as plt

    plt.close(figure)
    _, given = plt.subplots()
    assert finder.optimal_lr.plot(ax=given) is given.figure
    plt.close(given.figure)


def test_plot_without_matplotlib_says_which_extra_to_install(tmp_path) -> None:
    script = """
import sys
sys.modules["matplotlib"] = None
from ember.plugins.lr_finder import LRFinderResult
result = LRFinderResult("exponential", 1e-4, 1.0, 3)
result.results = {"lr": [1e-4, 1e-2, 1.0], "loss": [1.0, 0.5, 2.0]}
try:
    result.plot()
except ImportError as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert 'pip install "ember[plot]"' in done.stdout
    assert "matplotlib" in done.stdout


def test_another_attribute_name_can_hold_the_lr(trainer_factory) -> None:
    class BaseLR(Saddle):
        def __init__(self) -> None:
            super().__init__()
            self.base_lr = 1e-3

    model = BaseLR()
    finder = LearningRateFinder(min_lr=1e-4, max_lr=100, num_training_steps=100, attr_name="base_lr")
    find(trainer_factory, finder, model)
    assert model.base_lr == finder.optimal_lr.suggestion()


def test_without_an_lr_attribute_update_attr_is_refused(trainer_factory) -> None:
    class NoLR(Saddle):
        def __init__(self) -> None:
            super().__init__()
            self._hparams.pop("lr")

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(MisconfigurationError, match="`lr` or `learning_rate`"):
        find(trainer_factory, LearningRateFinder(), NoLR())
    with pytest.raises(MisconfigurationError, match="attr_name='rate'"):
        find(trainer_factory, LearningRateFinder(attr_name="rate"), NoLR())


def test_several_optimizers_are_refused(trainer_factory) -> None:
    class Two(Saddle):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch: Any, batch_idx: int) -> None:
            pass

        def configure_optimizers(self) -> list[torch.optim.Optimizer]:
            return [
                torch.optim.SGD(self.net[0].parameters(), lr=0.1),
                torch.optim.SGD(self.net[1].parameters(), lr=0.1),
            ]

    with pytest.raises(MisconfigurationError, match="one optimizer; configure_optimizers\\(\\) returned 2"):
        find(trainer_factory, LearningRateFinder(), Two())


def test_too_few_points_give_no_suggestion_and_a_warning(trainer_factory) -> None:
    finder = LearningRateFinder(num_training_steps=5, update_attr=False)
    find(trainer_factory, finder)
    with pytest.warns(EmberWarning, match="too few to suggest"):
        assert finder.optimal_lr.suggestion() is None


def test_fast_dev_run_skips_the_test(trainer_factory) -> None:
    finder = LearningRateFinder()
    with pytest.warns(EmberWarning, match="skipped with fast_dev_run"):
        trainer_factory(callbacks=[finder], fast_dev_run=True).fit(Saddle())
    assert finder.optimal_lr is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "cosine"}, "mode='cosine'"),
        ({"min_lr": 1.0, "max_lr": 0.1}, "min_lr=1.0, max_lr=0.1"),
        ({"min_lr": 0.0}, "min_lr may be 0 in linear mode"),
        ({"num_training_steps": 0}, "num_training_steps=0"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match) -> None:
    with pytest.raises(MisconfigurationError, match=match):
        LearningRateFinder(**kwargs)
