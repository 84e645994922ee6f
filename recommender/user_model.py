"""One user's trained model, as ranking, the model stores and evaluation use it (train.py makes them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import Tensor

from .features import ItemTable
from .model import WideDeep
from .types import TrainConfig

if TYPE_CHECKING:
    from .shared import SharedSignals


@dataclass
class UserModel:
    """One user's trained model: weights + what ranking needs to score, rate and explain."""

    state: dict[str, Tensor]  # WideDeep(E) state dict: E ensemble members, scores are averaged
    cfg: TrainConfig
    fusion: float  # weight of the standardised collaborative score
    cf_mean: float
    cf_std: float
    ref_scores: np.ndarray  # 101 quantiles of the final score over the user's reference videos
    history: list[str]  # bvids the user engaged with (collaborative score + "similar" reasons)
    profile: dict[str, list[tuple[str, float]]]  # "tags" / "uploaders" / "partitions"
    trained_at: int
    # weight of the standardised EASE score (shared.ease_scores), chosen with `fusion` on validation
    ease_fusion: float = 0.0
    ease_mean: float = 0.0
    ease_std: float = 1.0
    _module: WideDeep | None = field(default=None, repr=False, compare=False)

    def module(self) -> WideDeep:
        if self._module is None:
            m = WideDeep(self.members, self.cfg)
            m.load_state_dict(self.state)
            self._module = m.eval()
        return self._module

    @property
    def members(self) -> int:
        return int(self.state["wide.bias"].shape[0])

    @torch.no_grad()
    def logits(self, table: ItemTable) -> np.ndarray:
        e = self.members
        x = {k: torch.from_numpy(v).unsqueeze(0).expand(e, *v.shape) for k, v in table_arrays(table).items()}
        return self.module()(x).mean(0).numpy()

    def final_scores(self, logits: np.ndarray, cf: np.ndarray | None, ease: np.ndarray | None = None) -> np.ndarray:
        """The W&D logits plus the standardised shared signals at this user's weights."""
        out = logits
        if cf is not None and self.fusion != 0.0:
            out = out + self.fusion * (cf - self.cf_mean) / self.cf_std
        if ease is not None and self.ease_fusion != 0.0:
            out = out + self.ease_fusion * (ease - self.ease_mean) / self.ease_std
        return out

    def shared_scores(self, shared: "SharedSignals | None", history: Sequence[str],
                      bvids: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(kNN, EASE) scores of the bvids, each None when this user's weight for it is 0."""
        if shared is None:
            return None, None
        cf = shared.scores(history, bvids) if self.fusion != 0.0 else None
        ease = shared.ease_scores(history, bvids) if self.ease_fusion != 0.0 and shared.has_ease else None
        return cf, ease

    def rating(self, scores: np.ndarray) -> np.ndarray:
        """0..100: the share of the user's reference (popular, unclicked) videos scored lower."""
        return np.clip(np.searchsorted(self.ref_scores, scores, side="right") - 1, 0, 100).astype(int)


def table_arrays(t: ItemTable) -> dict[str, np.ndarray]:
    """The encoded item columns by the names the model's forward reads."""
    return {"tags": t.tags, "uploader": t.uploader, "partition": t.partition, "cross": t.cross, "numeric": t.numeric}
