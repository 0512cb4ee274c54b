"""Two-way hooks: a plugin sees the batch, the loss, the optimizer step and the outputs, and may replace them."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import torch

import ember
from ember.testing import TinyModel

DOCS = Path(__file__).resolve().parents[2] / "docs" / "two_way_hooks.md"


def doc_examples() -> types.SimpleNamespace:
    """The plugins of docs/two_way_hooks.md, from the page's first code block."""
    block = DOCS.read_text().split("```python\n")[1].split("```")[0]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    return types.SimpleNamespace(**namespace)


class Doubling:
    @ember.hookimpl
    def ember_train_batch(self, batch):
        x, y = batch
        return x * 2, y * 2


class SeenBatches(ember.Callback):
    def __init__(self) -> None:
        self.batches: list[Any] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches.append(batch)


class StepInputs(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        self.inputs.append(batch[0])
        return super().training_step(batch, batch_idx)


def test_a_replaced_batch_reaches_training_step_and_batch_end_keeps_the_original(trainer_factory) -> None:
    model, seen = StepInputs(), SeenBatches()
    trainer_factory(callbacks=[Doubling(), seen], max_epochs=1, limit_train_batches=2).fit(model)
    assert all(torch.equal(step, 2 * kept[0]) for step, kept in zip(model.inputs, seen.batches))


def training_run(trainer_factory: Any, callbacks: list[Any], bad_batch: int | None = None) -> torch.nn.Module:
    class Model(TinyModel):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * float("nan") if batch_idx == bad_batch else loss

    torch.manual_seed(0)
    model = Model()
    model._data.train_dataloader = lambda: torch.utils.data.DataLoader(  # type: ignore[method-assign]
        ember.testing.models.regression_data(32), batch_size=8
    )
    trainer_factory(callbacks=callbacks, max_epochs=1, limit_val_batches=0).fit(model)  # validation would free grads
    return model.layer


def hand_written(scale: float, bad_batch: int | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    layer = TinyModel().layer
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.05)
    for batch_idx, (x, y) in enumerate(
        torch.utils.data.DataLoader(ember.testing.models.regression_data(32), batch_size=8)
    ):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(layer(x), y)
        loss = (loss * float("nan") if batch_idx == bad_batch else loss) * scale
        loss.backward()
        if torch.isfinite(loss):
            optimizer.step()
    return layer


def assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-7, rtol=0)
        assert torch.allclose(p.grad, q.grad, atol=1e-7, rtol=0)


def test_loss_scaling_gives_the_gradients_of_a_hand_written_loop(trainer_factory) -> None:
    examples = doc_examples()
    assert_same(training_run(trainer_factory, [examples.LossScale(3.0)]), hand_written(3.0))


def test_two_loss_scalers_compose(trainer_factory) -> None:
    examples = doc_examples()
    scalers = [examples.LossScale(2.0), examples.LossScale(1.5)]
    assert_same(training_run(trainer_factory, scalers), hand_written(3.0))


def test_skipping_non_finite_steps_gives_the_weights_of_a_hand_written_loop(trainer_factory) -> None:
    examples = doc_examples()
    skipper = examples.SkipNonFiniteSteps()
    assert_same(training_run(trainer_factory, [skipper], bad_batch=1), hand_written(1.0, bad_batch=1))
    assert skipper.skipped == 1


class Keep:
    def __init__(self, label: str, result: Any) -> None:
        self.label, self.result, self.called = label, result, False

    @ember.hookimpl
    def ember_validation_outputs(self, outputs):
        self.called = True
        return self.result


class Tag:
    @ember.hookimpl(wrapper=True)
    def ember_validation_outputs(self, outputs):
        winner = yield
        return {"tagged": winner}


class SeenOutputs(ember.Callback):
    def __init__(self) -> None:
        self.outputs: list[Any] = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.outputs.append(outputs)


def test_the_first_plain_implementation_that_returns_wins_and_wrappers_see_it(trainer_factory, tiny_model) -> None:
    silent, first, second, seen = Keep("silent", None), Keep("first", "A"), Keep("second", "B"), SeenOutputs()
    trainer = trainer_factory(callbacks=[Tag(), silent, first, second, seen], limit_val_batches=1)
    trainer.validate(tiny_model)
    assert seen.outputs == [{"tagged": "A"}]
    assert silent.called and first.called and not second.called


def test_replaced_predict_outputs_are_what_predict_returns(trainer_factory, tiny_model) -> None:
    class Rounded:
        @ember.hookimpl
        def ember_predict_outputs(self, outputs):
            return outputs.round()

    predictions = trainer_factory(callbacks=[Rounded()], limit_predict_batches=2).predict(tiny_model)
    assert all(torch.equal(p, p.round()) for p in predictions)


def test_points_nobody_implements_have_no_caller(trainer_factory, tiny_model) -> None:
    trainer = trainer_factory(max_epochs=1, limit_train_batches=1)
    trainer.fit(tiny_model)
    assert not any(name.startswith("ember_") for name in trainer._callers)
