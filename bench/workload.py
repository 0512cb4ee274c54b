"""Benchmark configurations, run by bench/run.py in a fresh process: prints one JSON line of timings.

    python bench/workload.py '[["raw", {"model": "tiny", "steps": 2000}], ["ember", {"optional": "off", ...}]]'

The jobs run one after another in this process (torch is imported once), in
the order given; bench/run.py shuffles that order every round. Each result
holds the wall-clock and the CPU time per training step, averaged over all
steps after a warm-up (``WARMUP``), so periodic costs (logging every
``log_every_n_steps``, progress-bar redraws) are counted, not hidden by a
median. CPU time is the steadier figure on a busy machine: time the process
spends descheduled is not in it.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

SHAPES = {"tiny": (32, 32, 1, 32), "mid": (1024, 1024, 10, 256), "unit": (1, 1, 1, 1)}  # in, hidden, out, batch
#: Steps left out of the per-step mean: past the first logging interval (50 steps), so that one-time work
#: (a logger opening its files or importing its writer, tqdm's first draws) is not counted as a per-step
#: cost; a quarter of the run when it is short (mid-size model, start-up).
WARMUP = 60
#: Per-step hooks a callback overriding every hook gets during training without validation.
STEP_HOOKS = (
    "on_train_batch_start",
    "on_before_zero_grad",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_train_batch_end",
)


def network(kind: str) -> torch.nn.Module:
    inputs, hidden, outputs, _ = SHAPES[kind]
    layers: list[torch.nn.Module] = [torch.nn.Linear(inputs, hidden), torch.nn.ReLU()]
    if kind == "mid":
        layers += [torch.nn.Linear(hidden, hidden), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(hidden, outputs))


def loader(kind: str, steps: int, sampler: Any = None) -> DataLoader:
    inputs, _, outputs, batch = SHAPES[kind]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(steps * batch, inputs, generator=generator)
    y = torch.randn(steps * batch, outputs, generator=generator)
    data = TensorDataset(x, y)
    if sampler is not None:
        return DataLoader(data, batch_size=batch, sampler=sampler(data))
    return DataLoader(data, batch_size=batch, shuffle=True)


class RawLoop:
    """The hand-written loop, run in blocks between a framework's steps, in the same process.

    A configuration and its raw loop take turns every ``BLOCK`` steps, so a slow
    phase of the machine (this 2-core VM's speed drifts by a quarter over
    seconds) hits both alike; ``parallel`` ("ddp" or "fsdp") wraps the model as
    a hand-written data-parallel loop would, on the process group the framework
    set up (built at the first block, which every rank reaches at the same step).
    """

    def __init__(self, kind: str, steps: int, parallel: str | None = None) -> None:
        self.kind, self.steps, self.parallel = kind, steps, parallel
        self.model: Any = None

    def _build(self) -> None:
        generator = torch.get_rng_state()
        torch.manual_seed(1)
        model = network(self.kind)
        sampler = None
        if self.parallel == "fsdp":
            from torch.distributed.fsdp import fully_shard

            model = fully_shard(model)
        elif self.parallel == "ddp":
            model = torch.nn.parallel.DistributedDataParallel(model)
        if self.parallel:
            import torch.distributed as dist

            rank, world = dist.get_rank(), dist.get_world_size()
            sampler = lambda data: torch.utils.data.DistributedSampler(data, num_replicas=world, rank=rank)  # noqa: E731
        self.model, self.optimizer = model, torch.optim.SGD(model.parameters(), lr=0.01)
        self.data = loader(self.kind, self.steps * (2 if self.parallel else 1), sampler)
        self.batches = iter(self.data)
        torch.set_rng_state(generator)  # the framework's own random stream stays as it would be without us
        self.run(min(WARMUP, self.steps // 4) or 1)  # its warm-up, outside every clock

    def run(self, count: int, clock: Any = time.process_time) -> None:
        if self.model is None:
            self._build()
        model, optimizer, ticks = self.model, self.optimizer, []
        for _ in range(count):
            ticks.append((time.perf_counter(), clock()))  # what Stamps costs the framework's steps, paid here too
            batch = next(self.batches, None)
            if batch is None:
                self.batches = iter(self.data)
                batch = next(self.batches)
            x, y = batch
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()


class Stamps:
    """Wall-clock and CPU timestamps taken where each training step starts, with the raw loop interleaved.

    With a :class:`RawLoop`, every ``block`` steps the raw loop runs ``block``
    steps of its own just before the framework's step is stamped; that time is
    taken out of the framework's and reported as the raw loop's.
    """

    def __init__(self, cpu: bool = True, raw: RawLoop | None = None, block: int = 50) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.paused: list[tuple[float, float]] = []  # raw-loop time before each stamp, running totals
        self.blocks: list[tuple[int, float, float]] = []  # (stamp index, wall, cpu) of each raw block
        self.start = time.perf_counter()
        self.ended = False  # whether the last stamp marks the end of training rather than a step's start
        self.raw, self.block = raw, block
        # reading a multi-threaded process's CPU time (gloo's threads) can take a millisecond: wall only there
        self.cpu_clock = time.process_time if cpu else time.perf_counter

    def __call__(self, last: bool = False) -> None:
        count = len(self.wall)
        wall_pause, cpu_pause = self.paused[-1] if self.paused else (0.0, 0.0)
        if self.raw is not None and not last and count and count % self.block == 0:
            wall, cpu = time.perf_counter(), self.cpu_clock()
            self.raw.run(self.block, self.cpu_clock)
            wall, cpu = time.perf_counter() - wall, self.cpu_clock() - cpu
            self.blocks.append((count, wall, cpu))
            wall_pause, cpu_pause = wall_pause + wall, cpu_pause + cpu
        self.paused.append((wall_pause, cpu_pause))
        self.wall.append(time.perf_counter())
        self.cpu.append(self.cpu_clock())
        self.ended = last

    def state(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in ("wall", "cpu", "paused", "blocks", "start", "ended")}

    def load(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, [tuple(item) for item in value] if key in ("paused", "blocks") else value)

    def summary(self) -> dict[str, float]:
        warmup = min(WARMUP, len(self.wall) // 4)
        # a step runs from its start to the next one's: what follows the last step (the epoch's end, with its
        # checkpoint and the loggers' flush) is a cost per epoch, not per step, and the raw loop has none
        end = len(self.wall) - (2 if self.ended else 1)
        steps = end - warmup
        paused = self.paused or [(0.0, 0.0)] * len(self.wall)
        result = {
            "wall_us": (self.wall[end] - self.wall[warmup] - paused[end][0] + paused[warmup][0]) / steps * 1e6,
            "cpu_us": (self.cpu[end] - self.cpu[warmup] - paused[end][1] + paused[warmup][1]) / steps * 1e6,
            "first_step_ms": (self.wall[0] - self.start) * 1e3,
        }
        counted = [(wall, cpu) for index, wall, cpu in self.blocks if warmup < index <= end]
        if counted:
            raw_steps = len(counted) * self.block
            result["raw_wall_us"] = sum(wall for wall, _ in counted) / raw_steps * 1e6
            result["raw_cpu_us"] = sum(cpu for _, cpu in counted) / raw_steps * 1e6
        return result


def interleaved(options: dict, cpu: bool = True) -> Stamps:
    """The stamps of a framework run, with its raw loop interleaved unless ``options`` says ``alone``."""
    if options.get("alone"):
        return Stamps(cpu=cpu)
    parallel = {"ddp_fork": "ddp", "ddp_spawn": "ddp", "ddp": "ddp", "fsdp": "fsdp"}.get(options.get("strategy", ""))
    block = 5 if options["model"] == "mid" else 50
    return Stamps(cpu=cpu, raw=RawLoop(options["model"], options["steps"], parallel), block=block)


def raw(options: dict) -> dict:
    """The raw loop alone, or (``interleaved``) against itself: the noise floor of the comparison.

    With ``clear``, this loop clears gradients as ember does when it may (``grad = None`` per parameter, not
    ``optimizer.zero_grad()``): against the plain raw loop, what that alone saves a step.
    """
    model = network(options["model"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    stamps = interleaved(options) if options.get("interleaved") else Stamps()
    parameters = list(model.parameters()) if options.get("clear") else None
    for x, y in loader(options["model"], options["steps"]):
        stamps()  # where the frameworks' training_step starts
        if parameters is None:
            optimizer.zero_grad()
        else:
            for parameter in parameters:
                parameter.grad = None
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    stamps(last=True)
    return stamps.summary()


def every_hook_names(callback_base: type) -> list[str]:
    return [
        n for n, v in vars(callback_base).items() if callable(v) and (n.startswith("on_") or n in ("setup", "teardown"))
    ]


def ember_flags(options: dict) -> dict[str, Any]:
    flags: dict[str, Any] = {"max_epochs": 1, "num_sanity_val_steps": 0, "default_root_dir": "."}
    if options.get("optional") == "off":
        flags.update(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    if options.get("bar"):
        flags["enable_progress_bar"] = True
    if options.get("profiler"):
        flags["profiler"] = "plugins"
    if options.get("autoresume"):
        flags["autoresume"] = True
    if options.get("strategy"):
        flags.update(strategy=options["strategy"], devices=2, accelerator="cpu")
    return flags


def ember_model(options: dict, stamps: Stamps) -> Any:
    import ember

    metrics = [f"metric_{i}" for i in range(options.get("metrics", 0))]

    class Model(ember.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = network(options["model"])

        def training_step(self, batch, batch_idx):
            stamps()
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            if options.get("log"):
                self.log("loss", loss, prog_bar=True)
            for name in metrics:
                self.log(name, loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return Model()


def ember_callbacks(options: dict, stamps: Stamps) -> list[Any]:
    import ember

    class Stamp(ember.Callback):
        def on_train_end(self, trainer, pl_module):
            stamps(last=True)

        # forked/spawned ranks run in children: rank 0's stamps come back to the caller as callback state
        def state_dict(self):
            return stamps.state()

        def load_state_dict(self, state_dict):
            stamps.load(state_dict)

    def noop(self, *args):
        return None

    NoopCallback = type("NoopCallback", (ember.Callback,), {n: noop for n in every_hook_names(ember.Callback)})

    class NoopPlugin:
        pass

    for name in every_hook_names(ember.Callback):
        if name not in ("state_dict", "load_state_dict"):
            setattr(NoopPlugin, name, staticmethod(ember.hookimpl(specname=name)(lambda trainer: None)))
    callbacks: list[Any] = [Stamp()]
    callbacks += [NoopCallback() for _ in range(options.get("callbacks", 0))]
    callbacks += [NoopPlugin() for _ in range(options.get("plugins", 0))]
    return callbacks


def ember_run(options: dict) -> dict:
    import ember

    stamps = interleaved(options, cpu="strategy" not in options)
    model = ember_model(options, stamps)
    callbacks = ember_callbacks(options, stamps)
    data = loader(options["model"], options["steps"])
    Trainer, flags = ember.Trainer, ember_flags(options)
    with tempfile.TemporaryDirectory() as folder:
        flags["default_root_dir"] = folder
        stamps.start = time.perf_counter()  # Trainer() to the first training step
        trainer = Trainer(callbacks=callbacks, **flags)
        trainer.fit(model, data)
    if not trainer.is_global_zero:
        return {}
    return stamps.summary()


def lightning_run(options: dict) -> dict:
    import pytorch_lightning as pl

    stamps = interleaved(options)

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = network(options["model"])

        def training_step(self, batch, batch_idx):
            stamps()
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            if options.get("log"):
                self.log("loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Stamp(pl.Callback):
        def on_train_end(self, trainer, pl_module):
            stamps(last=True)

    def noop(self, *args, **kwargs):
        return None

    NoopCallback = type("NoopCallback", (pl.Callback,), {n: noop for n in every_hook_names(pl.Callback)})
    callbacks: list = [Stamp()] + [NoopCallback() for _ in range(options.get("callbacks", 0))]
    flags = {"max_epochs": 1, "num_sanity_val_steps": 0, "accelerator": "cpu", "devices": 1}
    if options.get("optional") == "off":
        flags.update(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    data = loader(options["model"], options["steps"])
    model = Model()
    with tempfile.TemporaryDirectory() as folder:
        stamps.start = time.perf_counter()
        trainer = pl.Trainer(callbacks=callbacks, default_root_dir=folder, **flags)
        trainer.fit(model, data)
    return stamps.summary()


def checkpoint_io(options: dict) -> dict:
    """Save then load a ~200 MB model: ember's save/load against torch.save + fsync + rename / torch.load."""
    import ember
    from ember.core.checkpoint import dump_checkpoint, load_checkpoint_file

    class Big(ember.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(options.get("megabytes", 200) * 2**18))

        def training_step(self, batch, batch_idx):
            return (self.weight[:32] * batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    model = Big()
    folder = Path(tempfile.mkdtemp(dir="."))
    flags = ember_flags({"optional": "off"})
    trainer = ember.Trainer(max_steps=1, **{**flags, "default_root_dir": str(folder)})
    trainer.fit(model, DataLoader(TensorDataset(torch.ones(1, 32)), batch_size=1))
    checkpoint = dump_checkpoint(trainer)  # the same dict, built outside the clock for torch.save

    def with_ember(path: Path) -> None:
        trainer.save_checkpoint(path)
        model.load_state_dict(load_checkpoint_file(path)["state_dict"])

    def with_torch(path: Path) -> None:
        temporary = path.with_name(f".{path.name}.tmp")
        with open(temporary, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        model.load_state_dict(torch.load(path, weights_only=True)["state_dict"])

    # taking turns, each writer over its own previous file, as a run's periodic saves do; the first pair warms up
    times: dict[str, list[tuple[float, float]]] = {"ember": [], "torch": []}
    for turn in range(2 * options.get("pairs", 4) + 2):
        name = ("ember", "torch")[(turn + turn // 2) % 2]  # ember torch torch ember ember torch ...
        writer = with_ember if name == "ember" else with_torch
        wall, cpu = time.perf_counter(), time.process_time()
        writer(folder / f"{name}.ckpt")
        times[name].append(((time.perf_counter() - wall) * 1e6, (time.process_time() - cpu) * 1e6))
    for leftover in folder.rglob("*"):
        if leftover.is_file():
            leftover.unlink()
    ours, theirs = times["ember"][1:], times["torch"][1:]
    return {
        "wall_us": statistics.median(wall for wall, _ in ours),
        "cpu_us": statistics.median(cpu for _, cpu in ours),
        "raw_wall_us": statistics.median(wall for wall, _ in theirs),
        "raw_cpu_us": statistics.median(cpu for _, cpu in theirs),
    }


def run_job(framework: str, options: dict) -> dict:
    run = {
        "raw": raw,
        "ember": ember_run,
        "lightning": lightning_run,
        "checkpoint": checkpoint_io,
    }[framework]
    gc.collect()
    return run(options)


def main() -> None:
    jobs = json.loads(sys.argv[1])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # torch imports torch._dynamo when the first optimizer is built (seconds); do it before any clock starts
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    results = [run_job(framework, options) for framework, options in jobs]
    if os.environ.get("RANK", "0") == "0":  # a rank that re-runs this script stays silent
        print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
