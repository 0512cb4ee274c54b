"""One benchmark configuration, run by bench/run.py in a fresh process: prints a JSON line of timings.

python bench/workload.py raw|ember|lightning '{"model": "tiny", "steps": 2000, "optional": "off", ...}'
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

SHAPES = {"tiny": (32, 32, 1, 32), "mid": (1024, 1024, 10, 256)}  # in, hidden, out, batch
WARMUP = 10


def network(kind: str) -> torch.nn.Module:
    inputs, hidden, outputs, _ = SHAPES[kind]
    layers: list[torch.nn.Module] = [torch.nn.Linear(inputs, hidden), torch.nn.ReLU()]
    if kind == "mid":
        layers += [torch.nn.Linear(hidden, hidden), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(hidden, outputs))


def loader(kind: str, steps: int) -> DataLoader:
    inputs, _, outputs, batch = SHAPES[kind]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(steps * batch, inputs, generator=generator)
    y = torch.randn(steps * batch, outputs, generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)


def raw(options: dict) -> dict:
    model = network(options["model"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    stamps = []
    start = time.perf_counter()
    for x, y in loader(options["model"], options["steps"]):
        stamps.append(time.perf_counter())  # where the frameworks' training_step starts
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    stamps.append(time.perf_counter())
    return summary(stamps, start)


def summary(stamps: list[float], start: float) -> dict:
    steps = [b - a for a, b in zip(stamps[WARMUP:], stamps[WARMUP + 1 :])]
    return {
        "median_step_us": statistics.median(steps) * 1e6,
        "mean_step_us": statistics.fmean(steps) * 1e6,
        "first_step_ms": (stamps[0] - start) * 1e3,
    }


def every_hook_names(callback_base: type) -> list[str]:
    names = [
        n for n, v in vars(callback_base).items() if callable(v) and (n.startswith("on_") or n in ("setup", "teardown"))
    ]
    return names


def ember_run(options: dict) -> dict:
    import ember

    stamps: list[float] = []  # taken as each training_step starts, as the raw loop takes them before forward

    class Model(ember.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = network(options["model"])

        def training_step(self, batch, batch_idx):
            stamps.append(time.perf_counter())
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            if options.get("log"):
                self.log("loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Stamp(ember.Callback):
        def on_train_end(self, trainer, pl_module):
            stamps.append(time.perf_counter())

    def noop(self, *args):
        return None

    NoopCallback = type("NoopCallback", (ember.Callback,), {n: noop for n in every_hook_names(ember.Callback)})

    class NoopPlugin:
        pass

    for name in every_hook_names(ember.Callback):
        if name not in ("state_dict", "load_state_dict"):
            setattr(NoopPlugin, name, staticmethod(ember.hookimpl(specname=name)(lambda trainer: None)))
    callbacks: list = [Stamp()]
    callbacks += [NoopCallback() for _ in range(options.get("callbacks", 0))]
    callbacks += [NoopPlugin() for _ in range(options.get("plugins", 0))]
    flags = {"max_epochs": 1, "num_sanity_val_steps": 0, "default_root_dir": "."}
    if options.get("optional") == "off":
        flags.update(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    if options.get("bar"):
        flags["enable_progress_bar"] = True
    if options.get("profiler"):
        flags["profiler"] = "plugins"
    data = loader(options["model"], options["steps"])
    start = time.perf_counter()
    trainer = ember.Trainer(callbacks=callbacks, **flags)
    trainer.fit(Model(), data)
    return summary(stamps, start)


def lightning_run(options: dict) -> dict:
    import pytorch_lightning as pl

    stamps: list[float] = []

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = network(options["model"])

        def training_step(self, batch, batch_idx):
            stamps.append(time.perf_counter())
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            if options.get("log"):
                self.log("loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Stamp(pl.Callback):
        def on_train_end(self, trainer, pl_module):
            stamps.append(time.perf_counter())

    def noop(self, *args, **kwargs):
        return None

    NoopCallback = type("NoopCallback", (pl.Callback,), {n: noop for n in every_hook_names(pl.Callback)})
    callbacks: list = [Stamp()] + [NoopCallback() for _ in range(options.get("callbacks", 0))]
    flags = {"max_epochs": 1, "num_sanity_val_steps": 0, "default_root_dir": ".", "accelerator": "cpu", "devices": 1}
    if options.get("optional") == "off":
        flags.update(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    data = loader(options["model"], options["steps"])
    start = time.perf_counter()
    trainer = pl.Trainer(callbacks=callbacks, **flags)
    trainer.fit(Model(), data)
    return summary(stamps, start)


def main() -> None:
    framework, options = sys.argv[1], json.loads(sys.argv[2])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # torch imports torch._dynamo when the first optimizer is built (seconds); do it before any clock starts
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    result = {"raw": raw, "ember": ember_run, "lightning": lightning_run}[framework](options)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
