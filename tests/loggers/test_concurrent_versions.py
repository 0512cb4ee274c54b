"""Runs started together in one folder each claim their own version_N: nothing is overwritten."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import torch
    from torch.utils.data import DataLoader, TensorDataset

    import ember
    from ember.loggers import CSVLogger


    class Tiny(ember.Module):
        def __init__(self, run: int) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            loss = self.layer(batch[0]).pow(2).mean()
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)


    root, run, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    while not go.exists():  # every process is ready (torch imported) before any claims a version
        time.sleep(0.01)
    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer = ember.Trainer(max_epochs=1, logger=CSVLogger(root), log_every_n_steps=1,
                            enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(run), data)
    """
)


@pytest.mark.slow
def test_eight_runs_started_together_get_eight_versions(tmp_path: Path) -> None:
    script, go = tmp_path / "run.py", tmp_path / "go"
    script.write_text(RUN)
    processes = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "logs"), str(run), str(go)]) for run in range(8)
    ]
    time.sleep(1)
    go.touch()
    assert [process.wait(timeout=300) for process in processes] == [0] * 8
    folders = sorted((tmp_path / "logs" / "ember_logs").iterdir())
    assert [folder.name for folder in folders] == [f"version_{n}" for n in range(8)]
    runs = sorted(yaml.safe_load((folder / "hparams.yaml").read_text())["run"] for folder in folders)
    assert runs == list(range(8))  # each folder holds one run's files, none overwritten
    for folder in folders:
        assert {path.name for path in folder.iterdir()} == {"hparams.yaml", "metrics.csv", "checkpoints"}
        assert len(list((folder / "checkpoints").iterdir())) == 1
