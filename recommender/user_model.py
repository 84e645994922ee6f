"""One user's trained model, as ranking, the model stores and evaluation use it (train.py makes them)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
            self.state = upgrade_state(self.state, m.state_dict())
            m.load_state_dict(self.state)
            self._module = m.eval()
        return self._module

    @property
    def members(self) -> int:
        return int(self.state["wide.bias"].shape[0])

    @torch.no_grad()
    def logits(self, table: ItemTable, followed: Collection[int] = ()) -> np.ndarray:
        """`followed`: the mids of the uploaders the user follows."""
        e = self.members
        x = {
            k: torch.from_numpy(v).unsqueeze(0).expand(e, *v.shape)
            for k, v in table_arrays(table, table.followed(followed)).items()
        }
        return self.module()(x).mean(0).numpy()

    def final_scores(self, logits: np.ndarray, cf: np.ndarray | None, ease: np.ndarray | None = None) -> np.ndarray:
        """The W&D logits plus the standardised shared signals at this user's weights."""
        out = logits
        if cf is not None and self.fusion != 0.0:
            out = out + self.fusion * (cf - self.cf_mean) / self.cf_std
        if ease is not None and self.ease_fusion != 0.0:
            out = out + self.ease_fusion * (ease - self.ease_mean) / self.ease_std
        return out

    def shared_scores(
        self, shared: SharedSignals | None, history: Sequence[str], bvids: Sequence[str]
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(kNN, EASE) scores of the bvids, each None when this user's weight for it is 0."""
        if shared is None:
            return None, None
        cf = shared.scores(history, bvids) if self.fusion != 0.0 else None
        ease = shared.ease_scores(history, bvids) if self.ease_fusion != 0.0 and shared.has_ease else None
        return cf, ease

    def rating(self, scores: np.ndarray) -> np.ndarray:
        """0..100: the share of the user's reference (popular, unclicked) videos scored lower."""
        return np.clip(np.searchsorted(self.ref_scores, scores, side="right") - 1, 0, 100).astype(int)


def table_arrays(t: ItemTable, follow: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The encoded item columns by the names the model's forward reads. `follow`: float32 [I], 1 where
    the user follows the uploader (None: follows nobody)."""
    return {
        "tags": t.tags,
        "uploader": t.uploader,
        "partition": t.partition,
        "cross": t.cross,
        "numeric": t.numeric,
        "tokens": t.tokens,
        "follow": follow if follow is not None else np.zeros(len(t), dtype=np.float32),
    }


def upgrade_state(state: dict[str, Tensor], fresh: dict[str, Tensor]) -> dict[str, Tensor]:
    """A model saved before an input existed (title tokens, follow), made loadable: the missing
    parameters and the missing input rows of the first deep layer are zeros, so it scores exactly as
    it did until it is retrained."""
    if state.keys() >= fresh.keys() and all(state[k].shape == fresh[k].shape for k in fresh):
        return state
    out = dict(state)
    for k, like in fresh.items():
        old = state.get(k)
        if old is None:
            out[k] = torch.zeros_like(like)
        elif old.shape != like.shape and old.dim() == like.dim() == 3 and old.shape[1] < like.shape[1]:
            out[k] = torch.cat([old, old.new_zeros(old.shape[0], like.shape[1] - old.shape[1], old.shape[2])], 1)
    return out
