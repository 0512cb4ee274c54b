"""FSDP2 with real processes on CPU (gloo): same weights as DDP and one process, distributed checkpoints.

Every run trains the small transformer-like model of sharded_program.py for
20 steps of a global batch of 8 sequences (4 per rank on 2 ranks).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).parent))
from sharded_program import bitwise_equal, largest_difference, train, trained, weights  # noqa: E402

TWO_RANKS = {"strategy": "fsdp", "devices": 2, "batch_size": 4}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory.mktemp("one_process"))


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FSDP on 2 ranks, saving a distributed checkpoint every 5 steps (top-k all, and last)."""
    return trained(tmp_path_factory.mktemp("sharded"), **TWO_RANKS, every_n_steps=5)


def test_fsdp_on_2_ranks_matches_ddp_and_one_process(tmp_path: Path, one_process: Path, sharded: Path) -> None:
    ddp = trained(tmp_path, strategy="ddp", devices=2, batch_size=4)
    assert largest_difference(weights(sharded), weights(ddp)) <= 1e-6
    assert largest_difference(weights(sharded), weights(one_process)) <= 1e-6
    assert bitwise_equal(weights(sharded, 0), weights(sharded, 1))


def test_fsdp_on_4_ranks_matches_ddp_and_one_process(tmp_path: Path, one_process: Path) -> None:
    four = {"devices": 4, "batch_size": 2}
    fsdp = trained(tmp_path / "fsdp", strategy="fsdp", **four)
    ddp = trained(tmp_path / "ddp", strategy="ddp", **four)
    assert largest_difference(weights(fsdp), weights(ddp)) <= 1e-6
    assert largest_difference(weights(fsdp), weights(one_process)) <= 1e-6


def test_sharded_checkpoints_are_folders_every_rank_writes_into(sharded: Path) -> None:
    folders = sorted(path.name for path in (sharded / "ckpt").iterdir())
    assert folders == ["last.ckpt", "step=10.ckpt", "step=15.ckpt", "step=20.ckpt", "step=5.ckpt"]
    files = sorted(path.name for path in (sharded / "ckpt" / "step=10.ckpt").iterdir())
    assert files == [".metadata", "__0_0.distcp", "__1_0.distcp", "ember_meta.pt"]


def test_resume_mid_epoch_from_a_distributed_checkpoint_is_bitwise_equal(tmp_path: Path, sharded: Path) -> None:
    resumed = trained(tmp_path, **TWO_RANKS, ckpt_path=str(sharded / "ckpt" / "step=10.ckpt"))
    assert bitwise_equal(weights(resumed), weights(sharded))


def test_a_checkpoint_saved_on_2_ranks_resumes_on_1(tmp_path: Path, sharded: Path) -> None:
    checkpoint = sharded / "ckpt" / "step=10.ckpt"
    resumed = trained(tmp_path, strategy="fsdp", devices=1, batch_size=8, ckpt_path=str(checkpoint))
    assert largest_difference(weights(resumed), weights(sharded)) <= 1e-6


def test_a_checkpoint_saved_on_2_ranks_resumes_on_4_which_match_one_process(
    tmp_path: Path, sharded: Path, one_process: Path
) -> None:
    checkpoint = sharded / "ckpt" / "step=10.ckpt"
    resumed = trained(tmp_path, strategy="fsdp", devices=4, batch_size=2, ckpt_path=str(checkpoint))
    assert largest_difference(weights(resumed), weights(one_process)) <= 1e-6
    assert json.loads((tmp_path / "result_3.json").read_text())["step"] == 20


def test_consolidated_checkpoint_loads_in_one_process_with_the_same_outputs(tmp_path: Path, sharded: Path) -> None:
    from sharded_program import LanguageModel

    output = tmp_path / "whole.ckpt"
    command = [sys.executable, "-m", "ember", "checkpoint", "consolidate", str(sharded / "ckpt" / "last.ckpt")]
    done = subprocess.run([*command, str(output)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = LanguageModel.load_from_checkpoint(output)
    reference = LanguageModel()
    reference.load_state_dict(weights(sharded))
    tokens = torch.randint(0, 32, (3, 8), generator=torch.Generator().manual_seed(5))
    assert torch.equal(loaded(tokens), reference(tokens))


def test_full_state_dict_type_writes_one_ordinary_file_that_resumes(tmp_path: Path) -> None:
    first = trained(tmp_path / "first", **{**TWO_RANKS, "strategy": "fsdp_full"}, every_n_steps=10)
    checkpoint = first / "ckpt" / "step=10.ckpt"
    assert checkpoint.is_file() and torch.load(checkpoint)["global_step"] == 10
    resumed = trained(tmp_path / "resumed", **{**TWO_RANKS, "strategy": "fsdp_full"}, ckpt_path=str(checkpoint))
    assert bitwise_equal(weights(resumed), weights(first))


def test_kill_9_during_a_sharded_save_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    done = train(tmp_path, **TWO_RANKS, every_n_steps=5, kill_at_commit=10)
    assert done.returncode != 0
    folder = tmp_path / "ckpt"
    assert sorted(path.name for path in folder.iterdir() if not path.name.startswith(".")) == [
        "last.ckpt",
        "step=5.ckpt",
    ]
    assert any(path.name.startswith(".step=10.ckpt.tmp-") for path in folder.iterdir())
    resumed = trained(tmp_path / "resumed", **TWO_RANKS, max_steps=6, ckpt_path=str(folder / "last.ckpt"))
    assert json.loads((resumed / "result_0.json").read_text())["step"] == 6


def test_a_model_built_on_the_meta_device_is_materialised_shard_by_shard(tmp_path: Path) -> None:
    root = trained(tmp_path, **TWO_RANKS, meta=True, max_steps=3)
    assert json.loads((root / "result_1.json").read_text())["step"] == 3
    assert all(torch.isfinite(value).all() for value in weights(root).values())


def test_clipping_and_accumulation_on_sharded_gradients_match_one_process(tmp_path: Path) -> None:
    options = {"clip": 0.5, "accumulate": 2, "max_steps": 6}
    alone = trained(tmp_path / "alone", **options, batch_size=4)
    sharded = trained(tmp_path / "sharded", **{**TWO_RANKS, "batch_size": 2}, **options)
    assert largest_difference(weights(sharded), weights(alone)) <= 1e-6


def test_clipping_by_value_on_sharded_gradients_matches_one_process(tmp_path: Path) -> None:
    options = {"clip": 0.01, "clip_algorithm": "value", "max_steps": 6}
    alone = trained(tmp_path / "alone", **options, batch_size=8)
    sharded = trained(tmp_path / "sharded", **{**TWO_RANKS, "batch_size": 4}, **options)
    assert largest_difference(weights(sharded), weights(alone)) <= 1e-6
    unclipped = trained(tmp_path / "unclipped", max_steps=6, batch_size=8)
    assert largest_difference(weights(unclipped), weights(alone)) > 1e-4  # the clipping did something


def test_summary_early_stopping_and_lr_monitor_under_fsdp(tmp_path: Path) -> None:
    from sharded_program import LanguageModel

    from ember.plugins.model_summary import human_readable_count

    done = train(tmp_path, **TWO_RANKS, with_callbacks=True, max_steps=40)
    assert done.returncode == 0, done.stderr[-4000:]
    total = sum(p.numel() for p in LanguageModel().parameters())
    assert f"{human_readable_count(total)} Total params" in " ".join(done.stdout.split())
    steps = [json.loads((tmp_path / f"result_{rank}.json").read_text())["step"] for rank in (0, 1)]
    assert steps == [20, 20]  # EarlyStopping stopped both ranks after the first epoch
    (metrics,) = tmp_path.rglob("metrics.csv")
    assert "lr-SGD" in metrics.read_text().splitlines()[0]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_nodes_under_torchrun_match_one_node_with_two_processes(
    tmp_path: Path, sharded: Path, strategy: str
) -> None:
    from sharded_program import free_port, program_env

    options = json.dumps({"strategy": strategy, "devices": 1, "num_nodes": 2, "batch_size": 4})
    rendezvous = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "two-nodes"]
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", *rendezvous]
    command += [str(Path(__file__).with_name("sharded_program.py")), str(tmp_path), options]
    nodes = [
        subprocess.Popen(command, env=program_env(), cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in "ab"
    ]
    errors = [node.communicate(timeout=300)[1] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], errors
    assert json.loads((tmp_path / "result_1.json").read_text())["world"] == 2
    assert largest_difference(weights(tmp_path), weights(sharded)) <= 1e-6


def test_top_k_keeps_the_best_folders_and_deletes_the_others(sharded: Path) -> None:
    kept = sorted((sharded / "best").iterdir())  # 4 saves of ModelCheckpoint(save_top_k=2, monitor="train_loss")
    assert len(kept) == 2 and all(path.name.startswith("step=") for path in kept)
    assert all((path / ".metadata").is_file() and (path / "ember_meta.pt").is_file() for path in kept)


def test_activation_checkpointing_and_cpu_offload_leave_the_results_unchanged(
    tmp_path: Path, one_process: Path
) -> None:
    root = trained(tmp_path, **{**TWO_RANKS, "strategy": "fsdp_recompute_offload"})
    assert largest_difference(weights(root), weights(one_process)) <= 1e-6


RESHARD_PROGRAM = """
import json, sys
import torch
import ember
from torch.distributed.tensor import DTensor
from ember.strategies import FSDPStrategy


class Model(ember.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(4))  # the root module's own parameter
        self.layer = torch.nn.Linear(4, 1)  # sharded on its own by the policy

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x * self.scale), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Seen(ember.Callback):
    def on_before_backward(self, trainer, pl_module, loss):  # after forward, before backward
        self.sharded = {"root": isinstance(pl_module.scale, DTensor), "child": isinstance(pl_module.layer.weight, DTensor)}


seen = Seen()
data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randn(8, 1))
strategy = FSDPStrategy(sharding_strategy=sys.argv[1], auto_wrap_policy={torch.nn.Linear})
trainer = ember.Trainer(strategy=strategy, accelerator="cpu", devices=1, max_steps=2, callbacks=[seen],
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
trainer.fit(Model(), torch.utils.data.DataLoader(data, batch_size=4))
print(json.dumps(seen.sharded))
"""


@pytest.mark.parametrize(
    ("sharding_strategy", "expected"),
    [("FULL_SHARD", {"root": False, "child": True}), ("SHARD_GRAD_OP", {"root": False, "child": False})],
)
def test_full_shard_frees_gathered_weights_after_forward_except_the_roots(
    tmp_path: Path, sharding_strategy: str, expected: dict
) -> None:
    """Between forward and backward: sharded again (DTensor) or still gathered; the root keeps its weights."""
    script = tmp_path / "reshard.py"
    script.write_text(RESHARD_PROGRAM)
    done = subprocess.run(
        [sys.executable, str(script), sharding_strategy], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
