"""ModelPruning: how many weights end up zero, when pruning runs, the lottery ticket, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.utils.prune as prune
from torch.utils.data import DataLoader

from ember.callbacks import ModelPruning
from ember.errors import MisconfigurationError
from ember.testing import CrashAfter as Crash
from ember.testing import TinyModel
from ember.testing.models import regression_data


def train_loader() -> DataLoader[Any]:
    """The tiny model's training data in a fixed order, so that two runs see the same batches."""
    return DataLoader(regression_data(64, 32, seed=0), batch_size=8)


def zeros(tensor: torch.Tensor) -> int:
    return int((tensor == 0).sum())


class TwoLayers(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(torch.relu(self.hidden(x)))  # type: ignore[no-any-return]


def fit(trainer_factory: Any, callbacks: list[Any], model: Any = None, max_epochs: int = 1, **kwargs: Any) -> Any:
    torch.manual_seed(0)
    model = model if model is not None else TinyModel()
    trainer = trainer_factory(max_epochs=max_epochs, callbacks=callbacks, **kwargs)
    trainer.fit(model, train_dataloaders=train_loader())
    return model


# ------------------------------------------------------------ zero fractions
def test_global_l1_pruning_zeroes_the_fraction_of_all_parameters(trainer_factory: Any) -> None:
    model = fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.5)])
    layer = model.layer
    assert zeros(layer.weight) + zeros(layer.bias) == 33  # half of 64 weights and 2 biases
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]  # made permanent
    assert not hasattr(layer, "weight_mask")


def test_pruning_every_epoch_prunes_a_fraction_of_what_is_left(trainer_factory: Any) -> None:
    model = fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.5)], max_epochs=3)
    # 33 of 66, then round(0.5 * 33) = 16 more, then round(0.5 * 17) = 8 more
    assert zeros(model.layer.weight) + zeros(model.layer.bias) == 57


def test_an_int_amount_prunes_that_many_parameters(trainer_factory: Any) -> None:
    model = fit(trainer_factory, [ModelPruning("random_unstructured", amount=10)])
    assert zeros(model.layer.weight) + zeros(model.layer.bias) == 10


def test_local_pruning_prunes_each_parameter_on_its_own(trainer_factory: Any) -> None:
    model = fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.25, use_global_unstructured=False)])
    assert zeros(model.layer.weight) == 16  # a quarter of 64
    assert zeros(model.layer.bias) == 0  # round(0.25 * 2) = 0


def test_a_torch_pruning_function_prunes_locally(trainer_factory: Any) -> None:
    callback = ModelPruning(prune.l1_unstructured, amount=0.25, use_global_unstructured=False)
    model = fit(trainer_factory, [callback])
    assert zeros(model.layer.weight) == 16


def test_structured_pruning_removes_whole_rows(trainer_factory: Any) -> None:
    callback = ModelPruning(
        "ln_structured",
        amount=0.5,
        use_global_unstructured=False,
        pruning_dim=0,
        pruning_norm=2,
        parameter_names=["weight"],
    )
    model = fit(trainer_factory, [callback])
    rows_zero = [bool((row == 0).all()) for row in model.layer.weight]
    assert sorted(rows_zero) == [False, True]
    assert zeros(model.layer.bias) == 0


def test_parameters_to_prune_limits_pruning_to_those_parameters(trainer_factory: Any) -> None:
    model = TwoLayers()
    callback = ModelPruning("l1_unstructured", parameters_to_prune=[(model.hidden, "weight")], amount=0.5)
    fit(trainer_factory, [callback], model)
    assert zeros(model.hidden.weight) == 512
    assert zeros(model.layer.weight) == 0 and zeros(model.hidden.bias) == 0


def test_filter_parameters_to_prune_chooses_among_the_parameters_found(trainer_factory: Any) -> None:
    class OnlyHidden(ModelPruning):
        def filter_parameters_to_prune(self, parameters_to_prune: Any = ()) -> Any:
            return [(module, name) for module, name in parameters_to_prune if module.out_features == 32]

    model = fit(trainer_factory, [OnlyHidden("l1_unstructured", amount=0.5)], TwoLayers())
    assert zeros(model.hidden.weight) + zeros(model.hidden.bias) == 528  # half of 1024 + 32
    assert zeros(model.layer.weight) == 0


# ------------------------------------------------------------------- timing
def test_amount_and_apply_pruning_may_depend_on_the_epoch(trainer_factory: Any) -> None:
    by_amount = ModelPruning("l1_unstructured", amount=lambda epoch: 0.5 if epoch == 1 else 0.0)
    assert zeros(fit(trainer_factory, [by_amount], max_epochs=3).layer.weight) > 0
    by_flag = ModelPruning("l1_unstructured", amount=0.5, apply_pruning=lambda epoch: epoch == 2)
    model = fit(trainer_factory, [by_flag], max_epochs=3)
    assert zeros(model.layer.weight) + zeros(model.layer.bias) == 33


def test_pruning_at_validation_epoch_end_skips_the_sanity_check(trainer_factory: Any) -> None:
    callback = ModelPruning("l1_unstructured", amount=0.5, prune_on_train_epoch_end=False)
    model = fit(trainer_factory, [callback], num_sanity_val_steps=2, max_epochs=2)
    assert zeros(model.layer.weight) + zeros(model.layer.bias) == 49  # after each epoch's validation: 33, then 16

    callback = ModelPruning("l1_unstructured", amount=0.5, prune_on_train_epoch_end=False)
    model = fit(trainer_factory, [callback], limit_val_batches=0)
    assert zeros(model.layer.weight) == 0


# ----------------------------------------------------------- lottery ticket
def test_lottery_ticket_resets_the_survivors_to_their_initial_values_each_time(trainer_factory: Any) -> None:
    torch.manual_seed(0)
    model = TinyModel()
    initial = model.layer.weight.detach().clone()
    fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.3)], model, max_epochs=3)
    kept = model.layer.weight != 0
    assert torch.equal(model.layer.weight[kept], initial[kept])


def test_without_the_lottery_ticket_the_survivors_keep_their_trained_values(trainer_factory: Any) -> None:
    torch.manual_seed(0)
    model = TinyModel()
    initial = model.layer.weight.detach().clone()
    fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.3, use_lottery_ticket_hypothesis=False)], model)
    kept = model.layer.weight != 0
    assert not torch.equal(model.layer.weight[kept], initial[kept])


def test_resample_parameters_resets_the_survivors_to_fresh_values(trainer_factory: Any) -> None:
    torch.manual_seed(0)
    model = TinyModel()
    initial = model.layer.weight.detach().clone()
    fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.3, resample_parameters=True)], model)
    kept = model.layer.weight != 0
    assert int(kept.sum()) == 45
    assert not torch.equal(model.layer.weight[kept], initial[kept])
    assert float(model.layer.weight.detach().abs().max()) <= 32**-0.5  # Linear's initialisation bound


# -------------------------------------------------------------- checkpoints
def test_checkpoints_hold_mask_free_weights_while_training_keeps_the_masks(
    trainer_factory: Any, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model, path = TinyModel(), tmp_path / "crash.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.5), Crash(path, epoch=1)], model, max_epochs=3)
    checkpoint = torch.load(path, weights_only=True)
    state = checkpoint["state_dict"]
    assert set(state) == {"layer.weight", "layer.bias"}
    assert zeros(state["layer.weight"]) + zeros(state["layer.bias"]) == 49
    assert hasattr(model.layer, "weight_mask")  # the run itself still trains around its masks
    masks = checkpoint["callbacks"][ModelPruning("l1_unstructured", amount=0.5).state_key]["masks"]
    assert set(masks) == {"layer.weight", "layer.bias"}
    assert torch.equal(masks["layer.weight"] == 0, state["layer.weight"] == 0)


def test_without_make_pruning_permanent_the_masks_stay(trainer_factory: Any, tmp_path: Path) -> None:
    model = fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.5, make_pruning_permanent=False)])
    assert hasattr(model.layer, "weight_mask") and hasattr(model.layer, "weight_orig")
    model.trainer.save_checkpoint(tmp_path / "masked.ckpt")
    state = torch.load(tmp_path / "masked.ckpt", weights_only=True)["state_dict"]
    assert {"layer.weight_orig", "layer.weight_mask"} <= set(state)


@pytest.mark.parametrize("crash", [{"epoch": 1}, {"step": 20}], ids=["epoch-end", "mid-epoch"])
@pytest.mark.parametrize("lottery", [True, False], ids=["lottery-ticket", "no-lottery-ticket"])
def test_crash_and_resume_prunes_as_an_uninterrupted_run(
    trainer_factory: Any, tmp_path: Path, crash: dict[str, int], lottery: bool
) -> None:
    def make() -> ModelPruning:
        return ModelPruning("l1_unstructured", amount=0.3, use_lottery_ticket_hypothesis=lottery)

    expected = fit(trainer_factory, [make()], max_epochs=4)

    path = tmp_path / "crash.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(trainer_factory, [make(), Crash(path, **crash)], max_epochs=4)
    torch.manual_seed(1)  # a different initialisation: everything must come from the checkpoint
    model = TinyModel()
    trainer = trainer_factory(max_epochs=4, callbacks=[make()])
    trainer.fit(model, train_dataloaders=train_loader(), ckpt_path=path)

    assert (
        zeros(model.layer.weight) + zeros(model.layer.bias) == 51
    )  # round(0.3 * 66) = 20, then 14 of 46, 10 of 32, 7 of 22
    assert torch.equal(model.layer.weight, expected.layer.weight)
    assert torch.equal(model.layer.bias, expected.layer.bias)


# ------------------------------------------------------------------ verbose
def test_verbose_logs_the_sparsity_before_and_after(trainer_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    fit(trainer_factory, [ModelPruning("l1_unstructured", amount=0.5, verbose=2)])
    out = caplog.text
    assert "Applied `L1Unstructured`. Pruned: 0/66 (0.00%) -> 33/66 (50.00%)" in out
    assert (
        "Applied `L1Unstructured` to `Linear(in_features=32, out_features=2, bias=True).weight` with amount=0.5" in out
    )


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pruning_fn": "l2_unstructured"}, "pruning_fn='l2_unstructured'"),
        ({"pruning_fn": 3}, "pruning_fn=3"),
        ({"pruning_fn": prune.L1Unstructured(amount=0.1)}, "the class, not an instance"),
        ({"pruning_fn": prune.L1Unstructured, "use_global_unstructured": False}, "needs use_global_unstructured"),
        ({"pruning_fn": prune.l1_unstructured}, "use_global_unstructured=False"),
        ({"pruning_fn": "ln_structured", "use_global_unstructured": False, "pruning_dim": 0}, "pruning_norm"),
        ({"pruning_fn": "random_structured", "use_global_unstructured": False}, "pruning_dim"),
        ({"pruning_fn": "random_structured", "pruning_dim": 0}, "needs an unstructured pruning method"),
        ({"pruning_fn": "l1_unstructured", "parameter_names": ["gamma"]}, "'gamma'"),
        ({"pruning_fn": "l1_unstructured", "amount": "half"}, "amount='half'"),
        ({"pruning_fn": "l1_unstructured", "verbose": 3}, "verbose=3"),
    ],
)
def test_bad_arguments_are_rejected_with_the_value_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MisconfigurationError, match=message):
        ModelPruning(**kwargs)


def test_parameters_to_prune_must_belong_to_the_model(trainer_factory: Any) -> None:
    stranger = torch.nn.Linear(3, 3)
    trainer = trainer_factory(callbacks=[ModelPruning("l1_unstructured", parameters_to_prune=[(stranger, "weight")])])
    with pytest.raises(MisconfigurationError, match="not in the model"):
        trainer.fit(TinyModel())
