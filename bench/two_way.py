"""What two-way hooks and declared order cost: median time per training step, in one process, one thread.

    python bench/two_way.py            # ~1 minute
    python bench/two_way.py --quick

Configurations, each fit on the same tiny model, repeated in turn so drift
hits all alike: no plugins; 10 callbacks overriding on_train_batch_end; the
same 10 with ember.order constraints chaining them (declared order is
resolved at registration, so per-step cost should not change); and plugins
implementing the three per-step two-way hooks as no-ops (returning None), the
price of using them. With no implementation, a two-way point is one
``is not None`` check per batch, so "no plugins" is also the unused case:
compare it with bench/run.py's "everything optional off" on the commit before.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import ember  # noqa: E402


class Stamps(ember.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.times.append(time.perf_counter())


class Listener(ember.Callback):
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        pass


def chained(count: int) -> list[ember.Callback]:
    """``count`` listeners, each declared after the previous one, registered in reverse."""
    classes: list[type] = []
    for index in range(count):
        decorate = ember.order(after=classes[-1]) if classes else (lambda cls: cls)
        classes.append(decorate(type(f"Chained{index}", (Listener,), {})))
    return [cls() for cls in reversed(classes)]


class NoOps:
    @ember.hookimpl
    def ember_train_batch(self, batch: Any) -> None:
        return None

    @ember.hookimpl
    def ember_loss(self, loss: Any) -> None:
        return None

    @ember.hookimpl
    def ember_optimizer_step(self, loss: Any) -> None:
        return None


class Model(ember.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


CONFIGS: dict[str, Any] = {
    "no plugins (two-way points unused)": lambda: [],
    "10 listeners": lambda: [Listener() for _ in range(10)],
    "10 listeners, order declared": lambda: chained(10),
    "no-op two-way implementations": lambda: [NoOps()],
}


def step_time(callbacks: list[Any], steps: int) -> float:
    data = TensorDataset(torch.randn(steps, 8), torch.randn(steps, 1))
    stamps = Stamps()
    trainer = ember.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        disable_plugins=None,
        callbacks=[stamps, *callbacks],
    )
    trainer.fit(Model(), DataLoader(data, batch_size=1))
    gaps = [b - a for a, b in zip(stamps.times, stamps.times[1:])]
    return statistics.median(gaps[len(gaps) // 10 :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    steps, repeats = (500, 3) if arguments.quick else (2000, 5)
    torch.set_num_threads(1)
    best: dict[str, float] = {name: float("inf") for name in CONFIGS}
    for _ in range(repeats):
        for name, make in CONFIGS.items():
            best[name] = min(best[name], step_time(make(), steps))
    base = best["no plugins (two-way points unused)"]
    for name, seconds in best.items():
        print(f"{name:40s} {seconds * 1e6:8.1f} us/step  x{seconds / base:.3f}")


if __name__ == "__main__":
    main()
