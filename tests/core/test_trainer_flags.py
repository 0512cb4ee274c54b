"""Trainer flags with Lightning's names and meaning, each checked by a real run or a clear error."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import DataLoader

import ember
from ember.errors import MisconfigurationError
from ember.testing import TinyModel
from ember.testing.models import regression_data


@pytest.mark.parametrize(
    ("flag", "value", "accepted"),
    [
        ("max_epochs", -2, "int >= 0"),
        ("max_epochs", 1.5, "int >= 0"),
        ("min_epochs", -1, "int >= 0"),
        ("max_steps", -5, "int >= 0"),
        ("limit_train_batches", 1.5, "float between 0.0 and 1.0"),
        ("limit_val_batches", -1, "int >= 0"),
        ("limit_test_batches", "all", "int >= 0"),
        ("val_check_interval", 0.0, "float in (0.0, 1.0]"),
        ("check_val_every_n_epoch", 0, "int >= 1"),
        ("num_sanity_val_steps", -2, "int >= 0"),
        ("accumulate_grad_batches", 0, "int >= 1"),
        ("gradient_clip_val", -1.0, "number >= 0"),
        ("gradient_clip_algorithm", "l2", "'norm', 'value'"),
        ("log_every_n_steps", 0, "int >= 1"),
        ("precision", "8-true", "'32-true', 'bf16-mixed', '16-mixed', '64-true'"),
        ("accelerator", "tpu", "'auto', 'cpu', 'cuda', 'gpu'"),
        ("devices", 0, "'auto', -1, an int >= 1"),
        ("fast_dev_run", -1, "bool or an int >= 0"),
        ("max_time", "1 hour", "DD:HH:MM:SS"),
        ("deterministic", "yes", "None, True, False, 'warn'"),
    ],
)
def test_an_invalid_flag_names_the_flag_the_value_and_what_is_accepted(flag, value, accepted) -> None:
    with pytest.raises(MisconfigurationError) as error:
        ember.Trainer(**{flag: value})
    message = str(error.value)
    assert flag in message and repr(value) in message and accepted in message


def test_cuda_is_refused_on_a_machine_without_it() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(MisconfigurationError, match="accelerator='cuda'.*no CUDA device"):
        ember.Trainer(accelerator="cuda")


def test_16_mixed_is_refused_on_cpu(trainer_factory, tiny_model) -> None:
    with pytest.raises(MisconfigurationError, match="16-mixed.*CUDA.*bf16-mixed"):
        trainer_factory(precision="16-mixed", accelerator="cpu").fit(tiny_model)


@pytest.mark.parametrize(("limit", "expected"), [(3, 3), (0.5, 4), (1.0, 8), (100, 8)])
def test_limit_train_batches_as_count_or_fraction(trainer_factory, tiny_model, limit, expected) -> None:
    trainer = trainer_factory(max_epochs=1, limit_train_batches=limit)
    trainer.fit(tiny_model)
    assert trainer.num_training_batches == expected
    assert trainer.global_step == expected


class CountsValidation(ember.Callback):
    def __init__(self) -> None:
        self.at: list[tuple[int, int]] = []

    def on_validation_start(self, trainer, pl_module):
        if not trainer.sanity_checking:
            trainer_step = trainer.fit_progress.total_batches
            self.at.append((trainer.current_epoch, trainer_step))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, [(0, 8), (1, 16)]),
        ({"val_check_interval": 0.5}, [(0, 4), (0, 8), (1, 12), (1, 16)]),
        ({"val_check_interval": 3}, [(0, 3), (0, 6), (1, 11), (1, 14)]),
        ({"check_val_every_n_epoch": 2, "max_epochs": 4}, [(1, 16), (3, 32)]),
        ({"check_val_every_n_epoch": None, "val_check_interval": 5}, [(0, 5), (1, 10), (1, 15)]),
    ],
)
def test_when_validation_runs(trainer_factory, tiny_model, options, expected) -> None:
    counter = CountsValidation()
    trainer_factory(callbacks=[counter], num_sanity_val_steps=0, **options).fit(tiny_model)
    assert counter.at == expected


@pytest.mark.parametrize(("steps", "expected"), [(0, 0), (2, 2), (-1, 4)])
def test_num_sanity_val_steps(trainer_factory, tiny_model, steps, expected) -> None:
    batches: list[int] = []

    class Sanity(ember.Callback):
        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            if trainer.sanity_checking:
                batches.append(batch_idx)

    trainer_factory(callbacks=[Sanity()], num_sanity_val_steps=steps, max_epochs=1).fit(tiny_model)
    assert len(batches) == expected


def test_sanity_check_metrics_are_discarded(trainer_factory, tiny_model) -> None:
    seen = {}

    class Look(ember.Callback):
        def on_sanity_check_end(self, trainer, pl_module):
            seen["during"] = set(trainer.callback_metrics)

        def on_train_start(self, trainer, pl_module):
            seen["after"] = set(trainer.callback_metrics)

    trainer_factory(callbacks=[Look()], max_epochs=1).fit(tiny_model)
    assert seen == {"during": {"val_loss"}, "after": set()}


@pytest.mark.parametrize(("accumulate", "steps_per_epoch"), [(1, 8), (2, 4), (3, 3), (8, 1)])
def test_accumulate_grad_batches_counts_optimizer_steps(
    trainer_factory, tiny_model, accumulate, steps_per_epoch
) -> None:
    trainer = trainer_factory(max_epochs=2, accumulate_grad_batches=accumulate)
    trainer.fit(tiny_model)
    assert trainer.global_step == 2 * steps_per_epoch


def test_accumulation_sums_the_gradients_of_the_window(trainer_factory) -> None:
    grads: list[torch.Tensor] = []

    class Model(TinyModel):
        def train_dataloader(self):
            return DataLoader(regression_data(64, 32, seed=0), batch_size=8)

        def on_before_optimizer_step(self, optimizer):
            grads.append(self.layer.weight.grad.clone())

    model = Model()
    reference = copy.deepcopy(model)
    trainer_factory(max_epochs=1, limit_train_batches=2, accumulate_grad_batches=2).fit(model)
    for batch in list(reference.train_dataloader())[:2]:
        (reference._loss(batch) / 2).backward()
    assert len(grads) == 1
    assert torch.allclose(grads[0], reference.layer.weight.grad)


class RecordsClipping(TinyModel):
    def __init__(self) -> None:
        super().__init__(lr=1.0)
        self.norms: list[float] = []
        self.max_abs: list[float] = []

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx) * 100  # large gradients

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        grads = [p.grad for p in self.parameters()]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        self.max_abs.append(max(float(g.abs().max()) for g in grads))


def test_gradient_clipping_by_norm(trainer_factory) -> None:
    model = RecordsClipping()
    trainer_factory(max_epochs=1, gradient_clip_val=0.5).fit(model)
    assert len(model.norms) == 8
    assert max(model.norms) <= 0.5 + 1e-5


def test_gradient_clipping_by_value(trainer_factory) -> None:
    model = RecordsClipping()
    trainer_factory(max_epochs=1, gradient_clip_val=0.01, gradient_clip_algorithm="value").fit(model)
    assert max(model.max_abs) <= 0.01 + 1e-7
    assert max(model.norms) > 0.01  # it clipped values, not the norm


def test_fast_dev_run(trainer_factory, tiny_model) -> None:
    trainer = ember.Trainer(
        fast_dev_run=True, enable_progress_bar=False, default_root_dir=str(trainer_factory().default_root_dir)
    )
    trainer.fit(tiny_model)
    assert trainer.global_step == 1 and trainer.num_val_batches == [1] and trainer.loggers == []
    trainer = ember.Trainer(
        fast_dev_run=3, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False
    )
    trainer.fit(TinyModel())
    assert trainer.global_step == 3


def test_reload_dataloaders_every_n_epochs(trainer_factory) -> None:
    requested: list[int] = []

    class Model(TinyModel):
        def train_dataloader(self):
            requested.append(self.current_epoch)
            return super().train_dataloader()

    trainer_factory(max_epochs=4, reload_dataloaders_every_n_epochs=2, num_sanity_val_steps=0).fit(Model())
    assert requested == [0, 2]


@pytest.mark.parametrize("inference", [True, False])
def test_inference_mode_flag(trainer_factory, inference) -> None:
    modes: list[tuple[bool, bool]] = []

    class Model(TinyModel):
        def validation_step(self, batch, batch_idx):
            modes.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))

    trainer_factory(inference_mode=inference).validate(Model(), verbose=False)
    assert set(modes) == {(inference, False)}


def test_deterministic_runs_are_bitwise_equal(trainer_factory) -> None:
    def train() -> dict[str, torch.Tensor]:
        ember.seed_everything(123)
        model = TinyModel()
        trainer_factory(max_epochs=2, deterministic=True).fit(model)
        return model.state_dict()

    first, second = train(), train()
    assert all(torch.equal(first[key], second[key]) for key in first)
    torch.use_deterministic_algorithms(False)


def test_bf16_mixed_runs_steps_under_autocast_on_cpu(trainer_factory) -> None:
    dtypes: list[torch.dtype] = []

    class Model(TinyModel):
        def training_step(self, batch, batch_idx):
            x, y = batch
            out = self(x)
            dtypes.append(out.dtype)
            return torch.nn.functional.mse_loss(out.float(), y)

    model = Model()
    trainer = trainer_factory(max_epochs=1, limit_train_batches=2, precision="bf16-mixed")
    trainer.fit(model)
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    assert model.layer.weight.dtype == torch.float32
    assert trainer.precision == "bf16-mixed"


def test_64_true_trains_in_float64(trainer_factory) -> None:
    dtypes: list[torch.dtype] = []

    class Model(TinyModel):
        def training_step(self, batch, batch_idx):
            dtypes.append(batch[0].dtype)
            return super().training_step(batch, batch_idx)

    model = Model()
    trainer_factory(max_epochs=1, limit_train_batches=1, precision="64-true").fit(model)
    assert dtypes == [torch.float64] and model.layer.weight.dtype == torch.float64


def test_estimated_stepping_batches(trainer_factory) -> None:
    seen = {}

    class Model(TinyModel):
        def configure_optimizers(self):
            seen["steps"] = self.trainer.estimated_stepping_batches
            return super().configure_optimizers()

    trainer_factory(max_epochs=3, accumulate_grad_batches=3).fit(Model())
    assert seen["steps"] == 3 * 3
    assert trainer_factory(max_steps=7).estimated_stepping_batches == 7


def test_stage_properties_during_hooks(trainer_factory, tiny_model) -> None:
    seen = set()

    class Look(ember.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.add(("train", trainer.training, trainer.validating, trainer.state.fn, trainer.state.stage))

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.add(("val", trainer.training, trainer.validating, trainer.state.fn, trainer.state.stage))

    trainer_factory(callbacks=[Look()], num_sanity_val_steps=0, max_epochs=1).fit(tiny_model)
    assert seen == {("train", True, False, "fit", "train"), ("val", False, True, "fit", "validate")}


def test_dataloaders_are_exposed_after_loading(trainer_factory, tiny_model) -> None:
    trainer = trainer_factory(max_epochs=1)
    assert trainer.train_dataloader is None
    trainer.fit(tiny_model)
    assert len(trainer.train_dataloader) == 8 and len(trainer.val_dataloaders) == 4


def test_validation_inside_fit_uses_no_grad_not_inference_mode(trainer_factory) -> None:
    modes: list[tuple[str, bool]] = []

    class Model(TinyModel):
        def validation_step(self, batch, batch_idx):
            modes.append((self.trainer.state.fn, torch.is_inference_mode_enabled()))

    model = Model()
    trainer = trainer_factory(max_epochs=1, limit_val_batches=1, num_sanity_val_steps=1)
    trainer.fit(model)
    trainer.validate(model, verbose=False)
    assert modes == [("fit", False), ("fit", False), ("validate", True)]


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_evaluating_with_a_limit_of_zero_batches_skips_the_loop_and_its_hooks(
    trainer_factory, tiny_model, stage
) -> None:
    from ember.testing import HookRecorder

    recorder = HookRecorder()
    flag = "limit_val_batches" if stage == "validate" else "limit_test_batches"
    trainer = trainer_factory(callbacks=[recorder], **{flag: 0})
    assert getattr(trainer, stage)(tiny_model) == []
    assert recorder.calls == ["setup", "teardown"]
