"""Wide & Deep with an explicit user dimension: every parameter is [U, ...], so one forward/backward
trains many users' independent models at once (user u's loss only touches slice u)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .features import N_NUMERIC
from .types import TrainConfig


def _offset(ids: Tensor, buckets: int) -> Tensor:
    """Per-user ids -> rows of the user-flattened table [U * buckets, ...]."""
    shape = (ids.shape[0],) + (1,) * (ids.dim() - 1)
    return ids + torch.arange(ids.shape[0], device=ids.device).view(shape) * buckets


def gather_rows(table: Tensor, ids: Tensor) -> Tensor:
    """table [U, B, *D], ids [U, ...] -> [U, ..., *D]: per-user embedding lookup. torch.gather, whose
    backward (scatter-add) is ~3x faster on CPU than F.embedding's on these shapes."""
    u, rest = ids.shape[0], ids.shape[1:]
    flat = ids.reshape(u, -1)
    tail = table.shape[2:]
    idx = flat.reshape(u, -1, *([1] * len(tail))).expand(u, flat.shape[1], *tail)
    return torch.gather(table, 1, idx).reshape(u, *rest, *tail)


class StackedLinear(nn.Module):
    def __init__(self, users: int, d_in: int, d_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(users, d_in, d_out) / d_in**0.5)
        self.bias = nn.Parameter(torch.zeros(users, 1, d_out))

    def forward(self, x: Tensor) -> Tensor:  # [U, N, d_in] -> [U, N, d_out]
        return torch.baddbmm(self.bias, x, self.weight)


class StackedEmbedding(nn.Module):
    def __init__(self, users: int, buckets: int, dim: int, scale: float = 0.1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(users, buckets, dim) * scale)

    def forward(self, ids: Tensor) -> Tensor:
        return gather_rows(self.weight, ids)


class Wide(nn.Module):
    """Linear over sparse ids (tags, uploader, partition, partition x duration) + quality."""

    def __init__(self, users: int, cfg: TrainConfig) -> None:
        super().__init__()
        self.tag = nn.Parameter(torch.zeros(users, cfg.tag_buckets))
        self.uploader = nn.Parameter(torch.zeros(users, cfg.uploader_buckets))
        self.partition = nn.Parameter(torch.zeros(users, cfg.partition_buckets))
        self.cross = nn.Parameter(torch.zeros(users, cfg.cross_buckets))
        self.quality = nn.Parameter(torch.zeros(users, 1))
        self.bias = nn.Parameter(torch.zeros(users, 1))

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        mask = (x["tags"] > 0).float()
        tag = (gather_rows(self.tag, x["tags"]) * mask).sum(-1)  # sum: each liked tag adds evidence
        return (tag + gather_rows(self.uploader, x["uploader"]) + gather_rows(self.partition, x["partition"])
                + gather_rows(self.cross, x["cross"]) + self.quality * x["numeric"][..., -1] + self.bias)


class TagAttention(nn.Module):
    """Attention-pooled tag embeddings; a per-user query decides which tags matter; padding masked."""

    def __init__(self, users: int, cfg: TrainConfig) -> None:
        super().__init__()
        self.embed = StackedEmbedding(users, cfg.tag_buckets, cfg.embed_dim)
        self.query = nn.Parameter(torch.randn(users, 1, 1, cfg.embed_dim) * 0.1)

    def forward(self, tags: Tensor) -> Tensor:  # [U, N, L] -> [U, N, d]
        table = self.embed.weight  # [U, B, d]
        # a tag's attention logit depends only on (user, tag): score the vocabulary once, then look up
        logits = gather_rows((table * self.query.view(table.shape[0], 1, -1)).sum(-1), tags)
        att = torch.softmax(logits.masked_fill(tags == 0, -1e9), -1) * (tags > 0).any(-1, keepdim=True)
        return (att.unsqueeze(-1) * self.embed(tags)).sum(-2)  # no tags -> zero vector


class Deep(nn.Module):
    def __init__(self, users: int, cfg: TrainConfig) -> None:
        super().__init__()
        self.tags = TagAttention(users, cfg)
        self.uploader = StackedEmbedding(users, cfg.uploader_buckets, cfg.embed_dim)
        h1, h2 = cfg.hidden
        self.l1 = StackedLinear(users, 2 * cfg.embed_dim + N_NUMERIC, h1)
        self.l2 = StackedLinear(users, h1, h2)
        self.l3 = StackedLinear(users, h2, 1)
        nn.init.zeros_(self.l3.weight)  # start as the wide model; the deep part grows in as it helps

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        h = torch.cat([self.tags(x["tags"]), self.uploader(x["uploader"]), x["numeric"]], -1)
        h = torch.relu(self.l1(h))
        h = torch.relu(self.l2(h))
        return self.l3(h).squeeze(-1)


class WideDeep(nn.Module):
    """logit[u, n] = wide + deep; sigmoid gives P(user u engages with item n)."""

    def __init__(self, users: int, cfg: TrainConfig) -> None:
        super().__init__()
        self.wide = Wide(users, cfg)
        self.deep = Deep(users, cfg)

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        return self.wide(x) + self.deep(x)


def stacked_init(users: int, cfg: TrainConfig, period: int = 1,
                 members: Callable[[int], int] = lambda r: 0) -> WideDeep:
    """Row r starts from the weights seeded by cfg.seed + members(r % period): every user's rows start
    alike, whichever other users share the batch (ensemble members differ by their seed)."""
    model = WideDeep(users, cfg)
    inits: dict[int, WideDeep] = {}
    with torch.random.fork_rng():  # do not disturb the caller's RNG
        for m in sorted({members(r) for r in range(period)}):
            torch.manual_seed(cfg.seed + m)
            inits[m] = WideDeep(1, cfg)
    with torch.no_grad():
        for r in range(period):
            rows = torch.arange(r, users, period)
            for p, p1 in zip(model.parameters(), inits[members(r)].parameters()):
                p[rows] = p1.expand(len(rows), *p1.shape[1:])
    return model
