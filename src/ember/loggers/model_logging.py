"""``log_model``: which checkpoint files a tracking logger (MLflow, W&B) uploads, and when.

Lightning's rule, shared by both loggers: with ``log_model="all"`` every
checkpoint is uploaded as soon as it is saved; with ``log_model=True`` they
are uploaded when the run ends successfully, except with ``save_top_k=-1``,
where every one is uploaded as it is saved; ``False`` uploads nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ember.core.rank import rank_zero_only


@dataclass(frozen=True)
class SavedCheckpoint:
    """One checkpoint file to upload: where it is, its monitored score, and its aliases."""

    path: str
    score: float | None
    aliases: tuple[str, ...]
    mtime: float

    def metadata(self, checkpoint_callback: Any) -> dict[str, Any]:
        """What a tracking service stores beside the file: the score, the monitored metric, the callback's setup."""
        return {
            "score": self.score,
            "original_filename": os.path.basename(self.path),
            "monitor": getattr(checkpoint_callback, "monitor", None),
            "save_top_k": getattr(checkpoint_callback, "save_top_k", None),
            "mode": getattr(checkpoint_callback, "mode", None),
        }


class ModelLogging:
    """Remembers what was uploaded, so each checkpoint version goes up once.

    :param log_model: ``False``, ``True`` or ``"all"``, as the logger was given it.
    """

    def __init__(self, log_model: bool | str) -> None:
        if log_model not in (True, False, "all"):
            raise ValueError(f"log_model={log_model!r}; accepted are True, False and 'all'")
        self.log_model = log_model
        self.checkpoint_callback: Any = None
        self._uploaded: dict[str, float] = {}

    def upload_now(self, checkpoint_callback: Any) -> bool:
        """Called after each save: True when the new checkpoints go up now; else they wait for the run's end."""
        if self.log_model is False:
            return False
        self.checkpoint_callback = checkpoint_callback
        return self.log_model == "all" or getattr(checkpoint_callback, "save_top_k", None) == -1

    def pending(self) -> list[SavedCheckpoint]:
        """The checkpoints of the callback not uploaded yet (or rewritten since), oldest first; marks them uploaded."""
        callback = self.checkpoint_callback
        if callback is None:
            return []
        scores: dict[str, Any] = dict(getattr(callback, "best_k_models", {}) or {})
        last = getattr(callback, "last_model_path", "")
        if last:
            scores.setdefault(last, getattr(callback, "current_score", None))
        best = getattr(callback, "best_model_path", "")
        if best:
            scores.setdefault(best, getattr(callback, "best_model_score", None))
        found = []
        for path, score in scores.items():
            if not os.path.isfile(path):
                continue
            mtime = os.path.getmtime(path)
            if self._uploaded.get(path) == mtime:
                continue
            value = None if score is None else float(score.item() if hasattr(score, "item") else score)
            found.append((mtime, path, value))
            self._uploaded[path] = mtime
        found.sort()
        newest = found[-1][1] if found else None
        return [
            SavedCheckpoint(
                path,
                value,
                tuple(alias for alias, on in (("latest", path == newest), ("best", path == best)) if on),
                mtime,
            )
            for mtime, path, value in found
        ]


class UploadsCheckpoints:
    """Mixin of loggers with ``log_model``: ``after_save_checkpoint`` applies the rule above."""

    _models: ModelLogging

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Upload the new checkpoints now with ``log_model="all"`` (or ``save_top_k=-1``); else at the run's end."""
        if self._models.upload_now(checkpoint_callback):
            self._upload_checkpoints()

    def _upload_checkpoints(self) -> None:
        raise NotImplementedError
