"""Host-device synchronisations per training step on CUDA: none apart from the progress bar and the logging interval.

Counted with ``torch.cuda.set_sync_debug_mode`` through ``ember.testing.HostSyncs(cuda=True)``; skipped without a
GPU. The CPU counterpart (tests/testing/test_syncs.py) counts tensor-to-Python conversions instead.
Run: ``python -m pytest tests/gpu/test_syncs_per_step.py -q -rs`` (part of ``bash tests/gpu/check.sh``).
"""

from __future__ import annotations

import pytest
import torch

import ember
from ember.testing import HostSyncs, TinyModel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class LogsToTheBar(TinyModel):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)  # logs train_loss every step
        self.log("bar_loss", loss, prog_bar=True)
        return loss


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_defaults_with_self_log_every_step_synchronise_only_to_draw_the_bar_and_to_log(tmp_path, precision) -> None:
    syncs = HostSyncs(cuda=True)
    trainer = ember.Trainer(
        accelerator="cuda",
        devices=1,
        precision=precision,
        max_epochs=2,
        default_root_dir=tmp_path,
        log_every_n_steps=5,
        callbacks=[syncs],
    )
    with syncs:
        trainer.fit(LogsToTheBar(batch_size=4))  # 16 steps an epoch
    print(f"{precision}: {len(syncs.events)} synchronisations in 32 steps:", *syncs.events, sep="\n  ")
    assert syncs.unexplained() == []
    assert syncs.steps_with("logger") <= {4, 9, 14, 19, 24, 29}


def test_16_mixed_steps_synchronise_no_more_than_the_gradient_scaler_needs(tmp_path) -> None:
    """The GradScaler's inf check reads one value per optimizer step; report it, allow only that."""
    syncs = HostSyncs(cuda=True)
    trainer = ember.Trainer(
        accelerator="cuda",
        devices=1,
        precision="16-mixed",
        max_epochs=1,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        logger=False,
        callbacks=[syncs],
    )
    with syncs:
        trainer.fit(LogsToTheBar(batch_size=4))
    print("16-mixed:", *syncs.events, sep="\n  ")
    per_step: dict[int, int] = {}
    for event in syncs.unexplained():
        if "grad_scaler" not in event.where:
            per_step[event.step] = per_step.get(event.step, 0) + 1
    assert per_step == {}
