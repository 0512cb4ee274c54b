"""Train a small regression model on synthetic data and print the final metrics.

Run it with ``python examples/train.py``; it finishes in seconds on two CPU cores.
The default logger writes TensorBoard event files under example_runs/ember_logs:
look at them with ``tensorboard --logdir example_runs/ember_logs``.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.callbacks import EarlyStopping, ModelCheckpoint


class Regressor(ember.Module):
    """A two-layer MLP fitting y = sin(x0) + x1^2 on 8 input features."""

    def __init__(self, hidden: int = 64, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def synthetic(samples: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 8, generator=generator)
    y = (torch.sin(x[:, 0]) + x[:, 1] ** 2).unsqueeze(1)
    return TensorDataset(x, y)


def main() -> dict[str, float]:
    ember.seed_everything(7)
    train = DataLoader(synthetic(4096, 0), batch_size=64, shuffle=True)
    val = DataLoader(synthetic(1024, 1), batch_size=256)
    trainer = ember.Trainer(
        max_epochs=15,
        callbacks=[EarlyStopping(monitor="val_loss", patience=3), ModelCheckpoint(monitor="val_loss")],
        default_root_dir="example_runs",
    )
    trainer.fit(Regressor(), train, val)
    metrics = {key: round(float(value), 4) for key, value in trainer.callback_metrics.items()}
    print(f"final metrics after {trainer.current_epoch} epochs: {metrics}")
    print(f"best checkpoint: {trainer.checkpoint_callback.best_model_path}")
    print(f"logs: {trainer.log_dir} (tensorboard --logdir {trainer.logger.root_dir})")
    return metrics


if __name__ == "__main__":
    main()
