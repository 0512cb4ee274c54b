"""The training hot path reads no tensor value into Python, apart from the progress bar's redraws and logging."""

from __future__ import annotations

import ember
from ember.testing import HostSyncs, TinyModel


class LogsToTheBar(TinyModel):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)  # logs train_loss every step
        self.log("bar_loss", loss, prog_bar=True)
        return loss


def test_defaults_with_self_log_every_step_read_values_only_to_draw_the_bar_and_to_log(tmp_path) -> None:
    syncs = HostSyncs()
    trainer = ember.Trainer(max_epochs=2, default_root_dir=tmp_path, log_every_n_steps=5, callbacks=[syncs])
    with syncs:
        trainer.fit(LogsToTheBar(batch_size=4))  # 16 steps an epoch
    assert syncs.unexplained() == []
    assert syncs.steps_with("logger") == {4, 9, 14, 19, 24, 29}
    assert len([event for event in syncs.events if event.origin == "logger"]) == 6  # one read for both metrics


def test_a_callback_reading_the_loss_every_step_is_reported_with_its_line(tmp_path) -> None:
    class ReadsLoss(ember.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.last = outputs["loss"].item()

    syncs = HostSyncs()
    trainer = ember.Trainer(max_epochs=1, default_root_dir=tmp_path, callbacks=[syncs, ReadsLoss()])
    with syncs:
        trainer.fit(LogsToTheBar(batch_size=16))  # 4 steps
    assert [event.step for event in syncs.unexplained()] == [0, 1, 2, 3]
    assert "test_syncs.py" in syncs.unexplained()[0].where
    assert "on_train_batch_end" in syncs.unexplained()[0].where
