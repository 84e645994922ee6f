"""A two-tower model shared by all users, for recall from the whole catalogue.

Item tower: hashed tags, uploader, partition and a quality bin (plus an optional bag of title tokens,
read from `Video.tokens` when the features carry them), summed and passed through a small residual
layer to a unit vector. User tower: a recency-weighted mean of the item vectors of the user's newest
chosen videos, through a linear layer to a unit vector. Trained with an in-batch sampled softmax
(each example's target against the other targets of its batch, popularity-corrected: Yi et al. 2019).

Stored as safetensors (weights, the catalogue's item vectors; ids and config in the metadata, never
pickled). `members` names the users whose behaviour the build read, so a /forget drops it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from recommender import text

from .features import hash_id, quality_score
from .types import Video


@dataclass(frozen=True)
class TowerConfig:
    tag_buckets: int = 8192
    uploader_buckets: int = 8192
    partition_buckets: int = 512
    token_buckets: int = 16384
    quality_bins: int = 10
    max_tags: int = 8
    max_tokens: int = 16
    dim: int = 32
    history: int = 50  # the user tower reads this many newest chosen videos
    temperature: float = 0.1
    lr: float = 0.01
    batch: int = 512
    epochs: int = 4
    max_steps: int = 400  # bounds a build: steps x batch examples at most
    seed: int = 0


def video_tokens(video: Video) -> tuple[str, ...]:
    """The title's words (stored at save, else segmented here: recommender.text)."""
    return text.video_tokens(video)


# ---------------------------------------------------------------- features


def encode_items(videos: Sequence[Video], cfg: TowerConfig) -> dict[str, np.ndarray]:
    """Hashed ids per video: tags [I, max_tags], tokens [I, max_tokens] (0 = padding), uploader,
    partition, quality bin [I]."""
    n = len(videos)
    tags = np.zeros((n, cfg.max_tags), dtype=np.int64)
    tokens = np.zeros((n, cfg.max_tokens), dtype=np.int64)
    uploader = np.zeros(n, dtype=np.int64)
    partition = np.zeros(n, dtype=np.int64)
    quality = np.zeros(n, dtype=np.int64)
    for i, v in enumerate(videos):
        ids = [hash_id("tag", t, cfg.tag_buckets) for t in v.tags[: cfg.max_tags]]
        tags[i, : len(ids)] = ids
        toks = [hash_id("tok", t, cfg.token_buckets) for t in video_tokens(v)[: cfg.max_tokens]]
        tokens[i, : len(toks)] = toks
        uploader[i] = hash_id("up", str(v.owner_mid), cfg.uploader_buckets)
        partition[i] = hash_id("tid", str(v.tid), cfg.partition_buckets)
        quality[i] = 1 + min(cfg.quality_bins - 1, int(quality_score(v) * cfg.quality_bins))
    return {"tags": tags, "tokens": tokens, "uploader": uploader, "partition": partition, "quality": quality}


def _take(feats: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, Tensor]:
    return {k: torch.from_numpy(v[rows]) for k, v in feats.items()}


# ---------------------------------------------------------------- towers


class ItemTower(nn.Module):
    def __init__(self, cfg: TowerConfig) -> None:
        super().__init__()
        d = cfg.dim
        # Bags: the mean of the non-padding ids (zero when all are padding).
        self.tag = nn.EmbeddingBag(cfg.tag_buckets, d, mode="mean", padding_idx=0)
        self.token = nn.EmbeddingBag(cfg.token_buckets, d, mode="mean", padding_idx=0)
        self.uploader = nn.Embedding(cfg.uploader_buckets, d, padding_idx=0)
        self.partition = nn.Embedding(cfg.partition_buckets, d, padding_idx=0)
        self.quality = nn.Embedding(cfg.quality_bins + 1, d, padding_idx=0)
        self.mix = nn.Linear(d, d)
        for e in (self.tag, self.token, self.uploader, self.partition, self.quality):
            nn.init.normal_(e.weight, std=0.1)
            with torch.no_grad():
                e.weight[0].zero_()

    def forward(self, f: Mapping[str, Tensor]) -> Tensor:
        e = (
            self.tag(f["tags"])
            + self.token(f["tokens"])
            + self.uploader(f["uploader"])
            + self.partition(f["partition"])
            + self.quality(f["quality"])
        )
        return nn.functional.normalize(e + torch.tanh(self.mix(e)), dim=-1)


class UserTower(nn.Module):
    """Recency-weighted mean of the history's item vectors (newest first), then a linear map."""

    def __init__(self, cfg: TowerConfig) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(cfg.history))
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(cfg.dim))
            self.proj.bias.zero_()

    def forward(self, context: Tensor, mask: Tensor) -> Tensor:
        """context [B, N, D] item vectors, mask [B, N] (True = a real item)."""
        n = context.shape[1]
        w = self.position[:n].expand(context.shape[0], n).masked_fill(~mask, -1e9).softmax(-1)
        pooled = (w.unsqueeze(-1) * context).sum(1)
        return nn.functional.normalize(self.proj(pooled), dim=-1)


class Towers(nn.Module):
    def __init__(self, cfg: TowerConfig) -> None:
        super().__init__()
        self.item = ItemTower(cfg)
        self.user = UserTower(cfg)


# ---------------------------------------------------------------- the trained model


@dataclass
class TwoTower:
    """The trained towers plus the item vectors of every video they may recall or read."""

    cfg: TowerConfig
    state: dict[str, Tensor]
    bvids: list[str]  # rows of `vectors`
    vectors: np.ndarray  # float32 [I, D], unit rows
    recallable: np.ndarray  # bool [I]: in the recall catalogue (available, with metadata)
    members: frozenset[str] = frozenset()
    built_at: int = 0
    seconds: float = 0.0  # what the build cost (training + encoding)
    _towers: Towers | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.index = {b: i for i, b in enumerate(self.bvids)}
        self._position = self.state["user.position"].numpy()
        self._proj_w = self.state["user.proj.weight"].numpy()
        self._proj_b = self.state["user.proj.bias"].numpy()
        self._not_recallable = np.where(self.recallable, 0.0, -np.inf).astype(np.float32)

    def towers(self) -> Towers:
        if self._towers is None:
            t = Towers(self.cfg)
            t.load_state_dict(self.state)
            self._towers = t.eval()
        return self._towers

    def user_vector(self, history: Sequence[str]) -> np.ndarray | None:
        """The user tower over the newest `cfg.history` known videos of `history` (newest first)."""
        rows = [self.index[b] for b in history if b in self.index][: self.cfg.history]
        if not rows:
            return None
        w = np.exp(self._position[: len(rows)] - self._position[: len(rows)].max())
        pooled = (w / w.sum()) @ self.vectors[rows]
        u = self._proj_w @ pooled + self._proj_b
        return (u / max(float(np.linalg.norm(u)), 1e-9)).astype(np.float32)

    def recall(self, history: Sequence[str], n: int, exclude: Collection[str] = ()) -> list[str]:
        """Up to n recallable videos nearest the user's vector, best first; none in `exclude` or history."""
        u = self.user_vector(history)
        if u is None or n <= 0:
            return []
        # einsum, not `@`: BLAS splits a 100,000-row product across threads, and on 2 busy cores that
        # took 24 ms where one thread takes under 1 ms.
        scores = np.einsum("ij,j->i", self.vectors, u) + self._not_recallable
        skip = [self.index[b] for b in (*exclude, *history) if b in self.index]
        scores[skip] = -np.inf
        m = min(n, int(np.isfinite(scores).sum()))
        if m == 0:
            return []
        top = np.argpartition(-scores, m - 1)[:m]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [self.bvids[i] for i in top]

    def item_vectors(self, videos: Sequence[Video]) -> np.ndarray:
        """Unit vectors of these videos: stored ones, the rest encoded by the item tower now."""
        out = np.zeros((len(videos), self.cfg.dim), dtype=np.float32)
        missing = []
        for j, v in enumerate(videos):
            i = self.index.get(v.bvid)
            if i is None:
                missing.append(j)
            else:
                out[j] = self.vectors[i]
        if missing:
            feats = encode_items([videos[j] for j in missing], self.cfg)
            with torch.no_grad():
                out[missing] = self.towers().item({k: torch.from_numpy(a) for k, a in feats.items()}).numpy()
        return out

    # -- safetensors: tensors + string metadata, never pickled

    def tensors(self) -> dict[str, Tensor]:
        t = {k: v.contiguous() for k, v in self.state.items()}
        t["_vectors"] = torch.from_numpy(np.ascontiguousarray(self.vectors, dtype=np.float32))
        t["_recallable"] = torch.from_numpy(self.recallable.astype(np.uint8))
        return t

    def metadata(self) -> dict[str, str]:
        return {
            "cfg": json.dumps(dataclasses.asdict(self.cfg)),
            "bvids": json.dumps(self.bvids),
            "members": json.dumps(sorted(self.members)),
            "built_at": str(self.built_at),
            "seconds": f"{self.seconds:.3f}",
        }

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> TwoTower:
        state = {k: v for k, v in tensors.items() if not k.startswith("_")}
        return cls(
            TowerConfig(**json.loads(metadata["cfg"])),
            state,
            json.loads(metadata["bvids"]),
            tensors["_vectors"].numpy(),
            tensors["_recallable"].numpy().astype(bool),
            frozenset(json.loads(metadata.get("members", "[]"))),
            int(metadata.get("built_at", "0")),
            float(metadata.get("seconds", "0")),
        )


# ---------------------------------------------------------------- training


def train_two_tower(
    choices: Mapping[str, Sequence[str]],
    videos: Mapping[str, Video],
    catalogue: Collection[str],
    *,
    cfg: TowerConfig = TowerConfig(),
    built_at: int = 0,
) -> TwoTower:
    """choices: user key -> chosen bvids, newest first. videos: what is known of every bvid named
    (choices and catalogue). catalogue: the videos recall may return. Each example is one chosen
    video (the target) and the up to `cfg.history` videos the user chose before it (the context);
    at most max_steps x batch examples, drawn uniformly."""
    with _one_thread():
        return _train(choices, videos, catalogue, cfg, built_at)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Train on the calling thread only: these are many small ops, and split across OpenMP threads
    each waits at a barrier for the other core. Measured on 2 busy cores (64 synthetic users):
    17 s with one thread, 198 s with two."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _train(
    choices: Mapping[str, Sequence[str]],
    videos: Mapping[str, Video],
    catalogue: Collection[str],
    cfg: TowerConfig,
    built_at: int,
) -> TwoTower:
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    vocab = sorted(
        {b for items in choices.values() for b in items if b in videos} | {b for b in catalogue if b in videos}
    )
    index = {b: i for i, b in enumerate(vocab)}
    feats = encode_items([videos[b] for b in vocab], cfg)
    users = [[index[b] for b in items if b in index] for items in choices.values()]
    users = [u for u in users if len(u) >= 2]
    towers = Towers(cfg)
    if users:
        _fit(towers, feats, users, len(vocab), cfg, rng)
    towers.eval()
    with torch.no_grad():
        vectors = (
            np.concatenate(
                [
                    towers.item(_take(feats, np.arange(s, min(s + 8192, len(vocab))))).numpy()
                    for s in range(0, len(vocab), 8192)
                ]
            )
            if vocab
            else np.zeros((0, cfg.dim), np.float32)
        )
    # Kept: the catalogue (recall's answers) and each member's newest `history` videos (what the user
    # tower reads); a long-tailed history past those is not held by every ranking process.
    wanted = set(catalogue)
    newest = {b for items in choices.values() for b in items[: cfg.history]}
    keep = [i for i, b in enumerate(vocab) if b in wanted or b in newest]
    members = frozenset(u for u, items in choices.items() if items)
    state = {k: v.detach().clone() for k, v in towers.state_dict().items()}
    return TwoTower(
        cfg,
        state,
        [vocab[i] for i in keep],
        vectors[keep].astype(np.float32),
        np.array([vocab[i] in wanted for i in keep], dtype=bool),
        members,
        built_at,
        time.perf_counter() - started,
    )


def _examples(users: list[list[int]], cfg: TowerConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(user, position) pairs: every chosen video but each user's oldest, at most max_steps x batch."""
    pairs = np.array([(u, p) for u, items in enumerate(users) for p in range(len(items) - 1)], dtype=np.int64)
    cap = cfg.max_steps * cfg.batch
    if len(pairs) > cap:
        pairs = pairs[rng.choice(len(pairs), cap, replace=False)]
    return pairs[:, 0], pairs[:, 1]


def _fit(
    towers: Towers,
    feats: Mapping[str, np.ndarray],
    users: list[list[int]],
    n_items: int,
    cfg: TowerConfig,
    rng: np.random.Generator,
) -> None:
    who, pos = _examples(users, cfg, rng)
    counts = Counter(i for items in users for i in items)
    log_q = np.log(np.array([counts.get(i, 0) + 1 for i in range(n_items)], dtype=np.float32) / (len(users) + 1))
    opt = torch.optim.Adam(towers.parameters(), lr=cfg.lr)
    steps = min(cfg.max_steps, max(1, math.ceil(cfg.epochs * len(who) / cfg.batch)))
    h = cfg.history
    for _step in range(steps):
        pick = rng.choice(len(who), min(cfg.batch, len(who)), replace=False)
        targets = np.array([users[who[e]][pos[e]] for e in pick], dtype=np.int64)
        context = np.zeros((len(pick), h), dtype=np.int64)
        mask = np.zeros((len(pick), h), dtype=bool)
        for r, e in enumerate(pick):
            before = users[who[e]][pos[e] + 1 : pos[e] + 1 + h]  # newest first: the ones chosen before
            context[r, : len(before)] = before
            mask[r, : len(before)] = True
        rows, inverse = np.unique(np.concatenate([targets, context[mask]]), return_inverse=True)
        vecs = towers.item(_take(feats, rows))
        tgt = vecs[torch.from_numpy(inverse[: len(targets)])]
        ctx = torch.zeros(len(pick), h, cfg.dim)
        ctx[torch.from_numpy(mask)] = vecs[torch.from_numpy(inverse[len(targets) :])]
        u = towers.user(ctx, torch.from_numpy(mask))
        logits = u @ tgt.T / cfg.temperature - torch.from_numpy(log_q[targets])[None, :]
        same = torch.from_numpy(targets[:, None] == targets[None, :]) & ~torch.eye(len(pick), dtype=torch.bool)
        logits = logits.masked_fill(same, -1e9)  # a duplicate of the positive is no negative
        loss = nn.functional.cross_entropy(logits, torch.arange(len(pick)))
        opt.zero_grad()
        loss.backward()
        opt.step()
