"""Wide & Deep with an explicit user dimension: every parameter is [U, ...], so one forward/backward
trains many users' independent models at once (user u's loss only touches slice u)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .features import N_NUMERIC
from .types import TrainConfig


def lookup_rows(table: Tensor, ids: Tensor) -> Tensor:
    """table [U, B, *D], ids [U, ...] -> [U, ..., *D]: per-user lookup as one index_select over the
    user-flattened table (its backward, index_add, is the cheapest on CPU for wide rows)."""
    u, buckets = table.shape[:2]
    offset = torch.arange(u, device=ids.device).view((u,) + (1,) * (ids.dim() - 1)) * buckets
    flat = table.reshape(u * buckets, *table.shape[2:]).index_select(0, (ids + offset).reshape(-1))
    return flat.reshape(*ids.shape, *table.shape[2:])


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
        return lookup_rows(self.weight, ids)


def _bag_sum(weights: Tensor, ids: Tensor) -> Tensor:
    """Sum of a per-user weight over a bag of ids, padding (0) left out: each word adds evidence."""
    return (lookup_rows(weights, ids) * (ids > 0).float()).sum(-1)


class Wide(nn.Module):
    """Linear over sparse ids (tags, title tokens, uploader, partition, partition x duration) + quality
    + whether the user follows the uploader."""

    def __init__(self, users: int, cfg: TrainConfig) -> None:
        super().__init__()
        self.tag = nn.Parameter(torch.zeros(users, cfg.tag_buckets))
        self.token = nn.Parameter(torch.zeros(users, cfg.token_buckets))
        self.follow = nn.Parameter(torch.zeros(users, 1))
        self.uploader = nn.Parameter(torch.zeros(users, cfg.uploader_buckets))
        self.partition = nn.Parameter(torch.zeros(users, cfg.partition_buckets))
        self.cross = nn.Parameter(torch.zeros(users, cfg.cross_buckets))
        self.quality = nn.Parameter(torch.zeros(users, 1))
        self.bias = nn.Parameter(torch.zeros(users, 1))

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        # title tokens averaged, not summed: a title has many more words than a video has telling
        # tags, and a sum let long titles swamp the rest (bilibili-history AUC 0.79 instead of 0.84)
        tokens = x["tokens"]
        title = _bag_sum(self.token, tokens) / (tokens > 0).float().sum(-1).clamp(min=1)
        return (
            _bag_sum(self.tag, x["tags"])
            + title
            + lookup_rows(self.uploader, x["uploader"])
            + lookup_rows(self.partition, x["partition"])
            + lookup_rows(self.cross, x["cross"])
            + self.quality * x["numeric"][..., -1]
            + self.follow * x["follow"]
            + self.bias
        )


class BagAttention(nn.Module):
    """Attention-pooled embeddings of a bag of ids (a video's tags, its title tokens); a per-user query
    decides which ids matter; padding masked.

    A tag's attention logit s = e_tag . query depends only on (user, tag), so the softmax over a
    video's tags is sum(exp(s) e) / sum(exp(s)): both sums are one lookup of a per-user
    [exp(s) e, exp(s)] table. The same numbers as gathering every tag's embedding and weighting it,
    without the [users, videos, tags, dim] products (2x faster training on CPU)."""

    def __init__(self, users: int, buckets: int, dim: int) -> None:
        super().__init__()
        self.embed = StackedEmbedding(users, buckets, dim)
        self.query = nn.Parameter(torch.randn(users, 1, 1, dim) * 0.1)

    def forward(self, tags: Tensor) -> Tensor:  # [U, N, L] -> [U, N, d]
        table = self.embed.weight  # [U, B, d]
        u, buckets, d = table.shape
        s = (table * self.query.view(u, 1, d)).sum(-1)  # [U, B]
        # shifting by the user's max changes no softmax; bucket 0 (padding) gets no weight
        w = torch.exp(s - s.amax(1, keepdim=True).detach()) * (torch.arange(buckets, device=s.device) > 0)
        sums = lookup_rows(torch.cat([table * w.unsqueeze(-1), w.unsqueeze(-1)], -1), tags).sum(-2)
        return sums[..., :d] / sums[..., d:].clamp(min=1e-30)  # no tags -> zero vector


class Deep(nn.Module):
    def __init__(self, users: int, cfg: TrainConfig) -> None:
        super().__init__()
        self.tags = BagAttention(users, cfg.tag_buckets, cfg.embed_dim)
        self.uploader = StackedEmbedding(users, cfg.uploader_buckets, cfg.embed_dim)
        h1, h2 = cfg.hidden
        self.l1 = StackedLinear(users, deep_inputs(cfg), h1)
        self.l2 = StackedLinear(users, h1, h2)
        self.l3 = StackedLinear(users, h2, 1)
        nn.init.zeros_(self.l3.weight)  # start as the wide model; the deep part grows in as it helps
        # created after the layers above, so they keep the initial weights a given seed gave them before
        self.tokens = BagAttention(users, cfg.token_buckets, cfg.embed_dim)

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        # the title and follow inputs come last: a model saved before they existed loads with zero
        # weights for them (user_model.upgrade_state) and scores exactly as it did
        h = torch.cat(
            [
                self.tags(x["tags"]),
                self.uploader(x["uploader"]),
                x["numeric"],
                self.tokens(x["tokens"]),
                x["follow"].unsqueeze(-1),
            ],
            -1,
        )
        h = torch.relu(self.l1(h))
        h = torch.relu(self.l2(h))
        return self.l3(h).squeeze(-1)


def deep_inputs(cfg: TrainConfig) -> int:
    """Width of the deep part's input: tag, uploader and title embeddings, the numerics, follow."""
    return 3 * cfg.embed_dim + N_NUMERIC + 1


class WideDeep(nn.Module):
    """logit[u, n] = wide + deep; sigmoid gives P(user u engages with item n)."""

    def __init__(self, users: int, cfg: TrainConfig) -> None:
        super().__init__()
        self.wide = Wide(users, cfg)
        self.deep = Deep(users, cfg)

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        return self.wide(x) + self.deep(x)


def stacked_init(
    users: int, cfg: TrainConfig, period: int = 1, members: Callable[[int], int] = lambda r: 0
) -> WideDeep:
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
