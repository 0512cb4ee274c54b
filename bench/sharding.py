"""Sharded training on CPU (gloo): per-rank memory of FSDP and the per-step cost of strategy="fsdp".

    python bench/sharding.py            # about 5 minutes on 2 cores
    python bench/sharding.py --quick    # fewer steps

For 1, 2 and 4 ranks (torchrun, one thread per rank), prints the bytes of
parameters and Adam state that each rank holds after training, and their
ratio to one rank (sharding should give close to 1/N). On 2 ranks it then times
the same model trained by ``Trainer(strategy="fsdp")`` and by a hand-written
``fully_shard`` loop in the same processes, and prints the median per-step
time of each (the best of three interleaved runs) and their ratio (target <= 1.05x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

VOCAB, DIM, SEQ, BLOCKS, BATCH = 1024, 256, 32, 4, 8


class Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(DIM), torch.nn.LayerNorm(DIM)
        self.qkv, self.proj = torch.nn.Linear(DIM, 3 * DIM), torch.nn.Linear(DIM, DIM)
        self.up, self.down = torch.nn.Linear(DIM, 4 * DIM), torch.nn.Linear(4 * DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.unflatten(-1, (4, -1)).transpose(1, 2) for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        attention = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attention.transpose(1, 2).flatten(2))
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm2(x))))


def network() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Embedding(VOCAB, DIM),
        *(Block() for _ in range(BLOCKS)),
        torch.nn.LayerNorm(DIM),
        torch.nn.Linear(DIM, VOCAB),
    )


def batches(steps: int, world: int) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB, (steps * BATCH * world, SEQ + 1), generator=generator)
    return DataLoader(TensorDataset(tokens[:, :-1], tokens[:, 1:]), batch_size=BATCH)


def loss_of(model: torch.nn.Module, batch: list[torch.Tensor]) -> torch.Tensor:
    tokens, targets = batch
    return torch.nn.functional.cross_entropy(model(tokens).flatten(0, 1), targets.flatten())


def local_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """Bytes of this rank's parameter shards and optimizer state."""

    def size(tensor: torch.Tensor) -> int:
        local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
        return local.numel() * local.element_size()

    parameters = sum(size(p) for p in model.parameters())
    states = sum(size(v) for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor))
    return parameters, states


# --------------------------------------------------------------- in a rank
def ember_run(steps: int) -> dict:
    import ember
    from ember.strategies import FSDPStrategy

    class Model(ember.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = network()

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.net(tokens)  # type: ignore[no-any-return]

        def training_step(self, batch, batch_idx):
            return loss_of(self, batch)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    class Clock(ember.Callback):
        def __init__(self) -> None:
            self.stamps: list[float] = []
            self.bytes = (0, 0)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.stamps.append(time.perf_counter())

        def on_train_end(self, trainer, pl_module):
            self.stamps.append(time.perf_counter())
            self.bytes = local_bytes(pl_module, trainer.optimizers[0])

    torch.manual_seed(0)
    clock = Clock()
    world = int(os.environ["WORLD_SIZE"])
    trainer = ember.Trainer(
        strategy=FSDPStrategy(auto_wrap_policy={Block}),
        accelerator="cpu",
        devices=world,
        max_steps=steps,
        callbacks=[clock],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        use_distributed_sampler=False,
    )
    trainer.fit(Model(), train_dataloaders=batches(steps, 1))
    return {"step_s": step_time(clock.stamps), "parameter_bytes": clock.bytes[0], "optimizer_bytes": clock.bytes[1]}


def hand_written_run(steps: int) -> dict:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if not dist.is_initialized():  # strategy="fsdp" leaves its process group for later calls
        dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    torch.manual_seed(0)
    model = network()
    for module in model:
        if isinstance(module, Block):
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    stamps = []
    for batch in batches(steps, 1):
        stamps.append(time.perf_counter())
        optimizer.zero_grad()
        loss_of(model, batch).backward()
        optimizer.step()
    stamps.append(time.perf_counter())
    return {"step_s": step_time(stamps)}


def step_time(stamps: list[float]) -> float:
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.median(gaps[len(gaps) // 5 :])  # the first fifth is warm-up


def worker(steps: int, out: str, compare: bool) -> None:
    results = {"ember": [ember_run(steps)]}
    if compare:  # interleaved three times each, so drift in machine load affects both alike
        results["hand"] = [hand_written_run(steps)]
        for _ in range(2):
            results["ember"].append(ember_run(steps))
            results["hand"].append(hand_written_run(steps))
    if os.environ.get("RANK") == "0":
        Path(out).write_text(json.dumps(results))


# ------------------------------------------------------------------ driver
def launch(ranks: int, steps: int, compare: bool) -> dict:
    out = Path(f"/tmp/ember-bench-sharding-{os.getpid()}-{ranks}.json")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", __file__]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    arguments = ["--worker", "--steps", str(steps), "--out", str(out)] + (["--compare"] if compare else [])
    subprocess.run(command + arguments, check=True, env=env, capture_output=True)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(arguments.steps, arguments.out, arguments.compare)
        return
    steps = 10 if arguments.quick else 30
    print(f"model: {sum(p.numel() for p in network().parameters()):,} parameters, Adam; gloo on CPU")
    print(f"{'ranks':>5}  {'params/rank':>12}  {'optimizer/rank':>14}  {'total/rank':>11}  {'vs 1 rank':>9}")
    base = None
    for ranks in (1, 2, 4):
        result = launch(ranks, 4, compare=False)["ember"][0]
        total = result["parameter_bytes"] + result["optimizer_bytes"]
        base = base or total
        print(
            f"{ranks:>5}  {result['parameter_bytes'] / 2**20:>10.2f}MB  {result['optimizer_bytes'] / 2**20:>12.2f}MB"
            f"  {total / 2**20:>9.2f}MB  {total / base:>8.3f}x"
        )
    timed = launch(2, steps, compare=True)
    ember_step = min(run["step_s"] for run in timed["ember"])
    hand_step = min(run["step_s"] for run in timed["hand"])
    print(
        f"2 ranks, median step: hand-written fully_shard {hand_step * 1e3:.2f} ms, "
        f"strategy='fsdp' {ember_step * 1e3:.2f} ms, ratio {ember_step / hand_step:.3f}x"
    )


if __name__ == "__main__":
    main()
