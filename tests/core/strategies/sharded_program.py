"""A small transformer-like language model trained by ember, run as a script by the sharded-training tests.

usage: python sharded_program.py ROOT JSON_OPTIONS

Options: strategy ("auto", "ddp", "fsdp", "fsdp_full", "fsdp_recompute_offload",
"model_parallel"), devices, num_nodes, batch_size (per rank), max_steps, ckpt_path,
every_n_steps (ModelCheckpoint folder ROOT/ckpt, and ROOT/best with the two lowest
train_loss), kill_at_commit (the global step at whose checkpoint commit rank 0 kills
itself), meta (build the model on the meta device), clip (gradient_clip_val), clip_algorithm,
accumulate, accelerator, precision, with_callbacks (ModelSummary, EarlyStopping on
train_loss, LearningRateMonitor and the CSV logger). Each rank writes
ROOT/weights_RANK.pt (the full weights) and ROOT/result_RANK.json. The helpers at
the end run it for the tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.callbacks import ModelCheckpoint
from ember.loggers import CSVLogger

VOCAB, DIM, SEQ, SAMPLES, HEAD = 32, 16, 8, 160, 8


class Block(torch.nn.Module):
    """Pre-norm self-attention and MLP, each with a residual connection."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(DIM)
        self.q, self.k, self.v = (torch.nn.Linear(DIM, DIM) for _ in range(3))
        self.proj = torch.nn.Linear(DIM, DIM)
        self.norm2 = torch.nn.LayerNorm(DIM)
        self.up = torch.nn.Linear(DIM, 4 * DIM)
        self.down = torch.nn.Linear(4 * DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        q, k, v = (heads(layer(h)) for layer in (self.q, self.k, self.v))  # tensor parallel: fewer heads here
        attention = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attention.transpose(1, 2).flatten(2))
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm2(x))))


def heads(x: torch.Tensor) -> torch.Tensor:
    return x.unflatten(-1, (-1, HEAD)).transpose(1, 2)


class LanguageModel(ember.Module):
    def __init__(self, meta: bool = False, batch_size: int = 8) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.meta, self.batch_size = meta, batch_size
        if not meta:
            self.build()

    def build(self) -> None:
        self.embed = torch.nn.Embedding(VOCAB, DIM)
        self.blocks = torch.nn.Sequential(Block(), Block())
        self.norm = torch.nn.LayerNorm(DIM)
        self.head = torch.nn.Linear(DIM, VOCAB)

    def configure_model(self) -> None:
        if self.meta and not hasattr(self, "embed"):
            with torch.device("meta"):
                self.build()
        if self.device_mesh is not None:  # ModelParallelStrategy: split attention heads and the MLP, then shard
            from torch.distributed.fsdp import fully_shard
            from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

            plan = {"q": ColwiseParallel(), "k": ColwiseParallel(), "v": ColwiseParallel(), "proj": RowwiseParallel()}
            plan.update(up=ColwiseParallel(), down=RowwiseParallel())
            for block in self.blocks:
                parallelize_module(block, self.device_mesh["tensor_parallel"], plan)
                fully_shard(block, mesh=self.device_mesh["data_parallel"])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.embed(tokens))))

    def training_step(self, batch, batch_idx):
        tokens, targets = batch
        loss = torch.nn.functional.cross_entropy(self(tokens).flatten(0, 1), targets.flatten())
        self.log("train_loss", loss, sync_dist=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(0)
        tokens = torch.randint(0, VOCAB, (SAMPLES, SEQ + 1), generator=generator)
        return DataLoader(TensorDataset(tokens[:, :-1], tokens[:, 1:]), batch_size=self.batch_size)


class SaveFullWeights(ember.Callback):
    """Writes the whole model on every rank when training ends (before the process group goes)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def on_train_end(self, trainer, pl_module):
        state = {key: _full(value) for key, value in pl_module.state_dict().items()}
        torch.save(state, f"{self.root}/weights_{trainer.global_rank}.pt")


def _full(value: torch.Tensor) -> torch.Tensor:
    full = getattr(value, "full_tensor", None)
    return (full() if full is not None else value).detach().clone()


def _strategy(name: str):
    from ember.strategies import FSDPStrategy, ModelParallelStrategy

    if name == "model_parallel":
        return ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=2)
    if name == "fsdp_full":
        return FSDPStrategy(auto_wrap_policy={Block}, state_dict_type="full")
    if name == "fsdp":
        return FSDPStrategy(auto_wrap_policy={Block})
    if name == "fsdp_recompute_offload":
        return FSDPStrategy(auto_wrap_policy={Block}, activation_checkpointing_policy={Block}, cpu_offload=True)
    return name


def main(root: str, options: dict) -> None:
    ember.seed_everything(1)
    if options.get("kill_at_commit"):
        _kill_at_commit(options["kill_at_commit"])
    callbacks: list = [SaveFullWeights(root)]
    if options.get("every_n_steps"):
        callbacks.append(
            ModelCheckpoint(
                dirpath=f"{root}/ckpt",
                every_n_train_steps=options["every_n_steps"],
                save_top_k=-1,
                save_last=True,
                filename="{step}",
            )
        )
        best = {"monitor": "train_loss", "save_top_k": 2, "every_n_train_steps": options["every_n_steps"]}
        callbacks.append(ModelCheckpoint(dirpath=f"{root}/best", filename="{step}", **best))
    if options.get("with_callbacks"):  # the built-ins that must agree across ranks or see the whole model
        from ember.callbacks import EarlyStopping, LearningRateMonitor

        callbacks += [EarlyStopping(monitor="train_loss", stopping_threshold=100.0), LearningRateMonitor()]
    model = LanguageModel(meta=options.get("meta", False), batch_size=options.get("batch_size", 8))
    trainer = ember.Trainer(
        strategy=_strategy(options.get("strategy", "auto")),
        accelerator=options.get("accelerator", "cpu"),
        precision=options.get("precision", "32-true"),
        devices=options.get("devices", 1),
        num_nodes=options.get("num_nodes", 1),
        max_steps=options.get("max_steps", 20),
        callbacks=callbacks,
        logger=CSVLogger(root) if options.get("with_callbacks") else False,
        enable_progress_bar=False,
        enable_model_summary=bool(options.get("with_callbacks")),
        enable_checkpointing=bool(options.get("every_n_steps")),
        default_root_dir=root,
        gradient_clip_val=options.get("clip"),
        gradient_clip_algorithm=options.get("clip_algorithm"),
        accumulate_grad_batches=options.get("accumulate", 1),
    )
    trainer.fit(model, ckpt_path=options.get("ckpt_path"))
    result = {"rank": trainer.global_rank, "world": trainer.world_size, "step": trainer.global_step}
    with open(f"{root}/result_{trainer.global_rank}.json", "w") as handle:
        json.dump(result, handle)


def _kill_at_commit(step: int) -> None:
    """Rank 0 dies by SIGKILL with a checkpoint's shards written but not yet renamed into place."""
    from ember.core import distributed_checkpoint

    commit = distributed_checkpoint._commit

    def commit_or_die(temporary, target):
        if f"step={step}" in target.name or (target.name == "last.ckpt" and _step_of(temporary) == step):
            os.kill(os.getpid(), signal.SIGKILL)
        commit(temporary, target)

    distributed_checkpoint._commit = commit_or_die


def _step_of(folder) -> int:
    return int(torch.load(folder / "ember_meta.pt", weights_only=True)["global_step"])


# ------------------------------------------------------- for the tests


def program_env() -> dict[str, str]:
    """This environment without a distributed run's variables, one thread per process, a short timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EMBER_DDP_TIMEOUT": "60"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train(root: Path, **options: object) -> subprocess.CompletedProcess[str]:
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, str(root), json.dumps(options)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=program_env(), cwd=root)


def trained(root: Path, **options: object) -> Path:
    done = train(root, **options)
    assert done.returncode == 0, done.stderr[-4000:]
    return root


def weights(root: Path, rank: int = 0) -> dict[str, torch.Tensor]:
    return torch.load(root / f"weights_{rank}.pt")


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[key] - b[key]).abs().max()) for key in a)


def bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
    # Every rank (the ones ember starts re-run this script) ends here once its results are written, without the
    # interpreter's teardown: there, torch's gloo threads of a process group that FSDP or DDP used can abort the
    # process ("terminate called without an active exception") after a finished run (docs/distributed.md).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
