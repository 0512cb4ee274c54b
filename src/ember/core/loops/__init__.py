"""The loops: fit (epochs), the training epoch, one optimization step, evaluation and prediction."""
