"""Validation and test (and the sanity check, which is a short validation): no gradients, metrics per run."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from ember.core.data import batches
from ember.core.loops.dispatch import call_batch_hook, module_batch_hook, replaced, transfer_batch
from ember.core.signatures import with_indices
from ember.core.state import RunningStage, TrainerFn

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


class ModuleModes:
    """Remembers each submodule's train/eval mode so evaluation can put back exactly what it found."""

    def __init__(self) -> None:
        self._saved: list[tuple[torch.nn.Module, bool]] = []

    def capture_and_eval(self, model: torch.nn.Module) -> None:
        self._saved = [(module, module.training) for module in model.modules()]
        model.eval()

    def restore(self) -> None:
        for module, training in self._saved:
            module.training = training
        self._saved = []


def run_evaluation(
    trainer: Trainer, stage: RunningStage, loaders: list[Any], counts: list[float]
) -> list[dict[str, float]]:
    """Run validation or test over ``loaders``; return one dict of the logged epoch metrics per dataloader."""
    module = trainer.lightning_module
    prefix = stage.hook_prefix  # "validation" or "test"
    several = len(loaders) > 1
    step = with_indices(getattr(module, f"{prefix}_step"), several)
    store = trainer._metrics
    previous_stage = trainer.state.stage
    trainer.state.stage = stage
    previous_store = store.use(stage.value, training=False)
    trainer._fx = f"on_{prefix}_model_eval"
    getattr(module, f"on_{prefix}_model_eval")()
    # validation inside fit uses no_grad, as in Lightning: tensors made there may be used in training later
    fitting = trainer.state.fn == TrainerFn.FITTING
    grad_off = torch.inference_mode() if trainer.inference_mode and not fitting else torch.no_grad()
    batch_start, batch_end = f"on_{prefix}_batch_start", f"on_{prefix}_batch_end"
    module_start, module_end = (
        module_batch_hook(trainer, batch_start, several),
        module_batch_hook(trainer, batch_end, several),
    )
    replace_outputs = trainer._callers.get(f"ember_{prefix}_outputs")
    with grad_off:
        trainer._hook(f"on_{prefix}_start")
        trainer._hook(f"on_{prefix}_epoch_start")
        for dataloader_idx, (loader, count) in enumerate(zip(loaders, counts)):
            store.dataloader_suffix = f"/dataloader_idx_{dataloader_idx}" if several else ""
            with contextlib.closing(batches(loader, count)) as iterator:
                for batch_idx, batch, _ in iterator:
                    batch = transfer_batch(trainer, batch, dataloader_idx)
                    store.batch = batch
                    call_batch_hook(trainer, batch_start, batch, batch_idx, dataloader_idx, module_start)
                    trainer._fx = f"{prefix}_step"
                    with trainer._precision.forward_context():
                        output = step(batch, batch_idx, dataloader_idx)
                    if replace_outputs is not None:
                        output = replaced(replace_outputs, trainer, output, batch, batch_idx, dataloader_idx)
                    call_batch_hook(trainer, batch_end, batch, batch_idx, dataloader_idx, module_end, output)
                    if stage != RunningStage.SANITY_CHECKING:
                        seen = trainer._seen_eval_batches
                        trainer._log_to_loggers(store.take_step_metrics(), step=seen[dataloader_idx], add_epoch=False)
                        seen[dataloader_idx] += 1
        store.dataloader_suffix = ""
        trainer._hook(f"on_{prefix}_epoch_end")
        logged = store.end_epoch()
        if stage != RunningStage.SANITY_CHECKING:
            trainer._log_to_loggers(logged, step=trainer.fit_progress.stepped_batches)
        trainer._hook(f"on_{prefix}_end")
    trainer._fx = f"on_{prefix}_model_train"
    getattr(module, f"on_{prefix}_model_train")()
    store.use(*previous_store)
    trainer.state.stage = previous_stage
    return _per_dataloader(logged, len(loaders))


def _per_dataloader(logged: dict[str, torch.Tensor], count: int) -> list[dict[str, float]]:
    results: list[dict[str, float]] = [{} for _ in range(count)]
    for key, value in logged.items():
        number = float(value.item())
        if "/dataloader_idx_" in key:
            index = int(key.rsplit("/dataloader_idx_", 1)[1])
            results[index][key] = number
        else:
            for result in results:
                result[key] = number
    return results


def print_results(stage: RunningStage, results: list[dict[str, float]]) -> None:
    """A table of the metrics of validate/test, one column per dataloader, as Lightning prints it."""
    keys = sorted({key for result in results for key in result})
    if not keys:
        return
    title = f"{'Validate' if stage == RunningStage.VALIDATING else 'Test'} metric"
    headers = [title] + [f"DataLoader {i}" for i in range(len(results))]
    rows = [[key] + [f"{result[key]:.6g}" if key in result else "" for result in results] for key in keys]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    rule = "-" * (sum(widths) + 3 * (len(widths) - 1))
    print(rule)
    for row in [headers, None, *rows]:
        if row is None:
            print(rule)
            continue
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    print(rule)
