"""Choosing and configuring the sharded strategies, and the checkpoint helpers, without starting processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ember
from ember.cli import main
from ember.core.distributed_checkpoint import consolidate, named_optimizer_state, numbered_optimizer_state
from ember.errors import CheckpointError, MisconfigurationError
from ember.strategies import FSDPStrategy, ModelParallelStrategy


def test_strategy_fsdp_by_name_takes_the_devices_flag() -> None:
    trainer = ember.Trainer(strategy="fsdp", accelerator="cpu", devices=2, logger=False)
    assert isinstance(trainer.strategy, FSDPStrategy)
    assert trainer.strategy.world_size == 2 and trainer.strategy.writes_distributed_checkpoints


def test_a_strategy_instance_takes_the_devices_and_nodes_flags() -> None:
    strategy = FSDPStrategy(state_dict_type="full")
    trainer = ember.Trainer(strategy=strategy, accelerator="cpu", devices=2, num_nodes=2, logger=False)
    assert trainer.strategy is strategy and strategy.world_size == 4
    assert not strategy.writes_distributed_checkpoints


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"sharding_strategy": "HYBRID"}, "sharding_strategy='HYBRID'"),
        ({"state_dict_type": "local"}, "state_dict_type='local'"),
        ({"auto_wrap_policy": {int}}, "auto_wrap_policy="),
        ({"activation_checkpointing_policy": torch.nn.Linear}, "activation_checkpointing_policy="),
    ],
)
def test_bad_fsdp_options_are_errors_naming_the_value(options: dict, named: str) -> None:
    with pytest.raises(MisconfigurationError, match=named.replace("(", r"\(")):
        FSDPStrategy(**options)


def test_model_parallel_sizes_must_multiply_to_the_ranks() -> None:
    with pytest.raises(MisconfigurationError, match="data_parallel_size=0"):
        ModelParallelStrategy(data_parallel_size=0)
    strategy = ModelParallelStrategy(data_parallel_size=3, tensor_parallel_size=1)
    ember.Trainer(strategy=strategy, accelerator="cpu", devices=2, logger=False)
    with pytest.raises(MisconfigurationError, match="3 x 1 = 3 ranks, but the run has 2"):
        strategy._sizes()


def test_optimizer_states_renumber_by_parameter_name_and_back() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    optimizer = torch.optim.Adam([{"params": model[2].parameters()}, {"params": model[0].parameters(), "lr": 0.1}])
    model(torch.randn(2, 3)).sum().backward()
    optimizer.step()
    numbered = optimizer.state_dict()
    named = named_optimizer_state(numbered, model, optimizer)
    assert named["param_groups"][0]["params"] == ["2.weight", "2.bias"]
    assert torch.equal(named["state"]["0.bias"]["exp_avg"], numbered["state"][3]["exp_avg"])
    again = numbered_optimizer_state(named)
    assert again["param_groups"] == numbered["param_groups"] and again["state"].keys() == numbered["state"].keys()


def test_consolidate_refuses_what_is_not_a_distributed_checkpoint(tmp_path: Path, capsys) -> None:
    with pytest.raises(CheckpointError, match="is not a distributed checkpoint"):
        consolidate(tmp_path, tmp_path / "out.ckpt")
    assert main(["checkpoint", "consolidate", str(tmp_path), str(tmp_path / "out.ckpt")]) == 1
    assert "is not a distributed checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out.ckpt").exists()
