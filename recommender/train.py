"""Batched per-user training: many users' Wide & Deep models in one pass, per-user early stopping."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.func import functional_call

from . import fusion
from .features import ItemTable, encode_videos
from .labels import Sample, make_samples
from .model import WideDeep, stacked_init
from .shared import SharedSignals
from .types import Event, TrainConfig, UserData, Video
from .user_model import UserModel, table_arrays

Batch = dict[str, Tensor]  # features [U, N, ...] + "label", "weight", "cw" ([U, 1])


def train_users(
    data: Mapping[str, UserData],
    videos: Mapping[str, Video],
    shared: SharedSignals | None,
    now: int,
    config: TrainConfig | None = None,
    *,
    fusion_shared: SharedSignals | None = None,
) -> dict[str, UserModel]:
    """Train every user's model; users are processed in chunks of `chunk_users`, each chunk in one
    batched pass. A user's result does not depend on the other users in the chunk.

    fusion_shared: signals built without the users' validation events (see `validation_holdout`),
    used only to choose each user's collaborative weight; `shared` itself saw those events, which
    inflates their collaborative score and would over-weight it. Defaults to `shared`."""
    cfg = config or TrainConfig()
    keys = list(data)
    out: dict[str, UserModel] = {}
    with torch.random.fork_rng():
        for i in range(0, len(keys), cfg.chunk_users):
            chunk = {k: data[k] for k in keys[i : i + cfg.chunk_users]}
            out.update(_train_chunk(chunk, videos, shared, fusion_shared or shared, now, cfg))
    return out


@dataclass
class _UserSplit:
    fit: list[Sample]
    val: list[Sample]
    cw: float
    followed: frozenset[int] = frozenset()  # the uploaders the user follows

    @property
    def all(self) -> list[Sample]:
        return self.fit + self.val


def _split(samples: list[Sample], cw: float, cfg: TrainConfig) -> _UserSplit:
    """Temporal split of the user's own samples; pool negatives split by a stable hash of the bvid."""
    own = sorted((s for s in samples if s.kind != "pool"), key=lambda s: (s.at, s.bvid))
    pool = [s for s in samples if s.kind == "pool"]
    n_val = int(round(len(own) * cfg.val_fraction))
    fit, val = own[: len(own) - n_val], own[len(own) - n_val :]
    # validate on the user's own negatives (shown, clicked-not-engaged) when there are enough: pool
    # negatives are easy to tell apart and would favour whatever separates "clicked" from "popular"
    own_neg = sum(s.label < 0.5 for s in val) >= cfg.min_val_negatives
    in_val = [not own_neg and zlib.crc32(s.bvid.encode()) % 100 < cfg.val_fraction * 100 for s in pool]
    fit += [s for s, v in zip(pool, in_val) if not v]
    val += [s for s, v in zip(pool, in_val) if v]
    if sum(s.label >= 0.5 for s in val) < cfg.min_val_positives or not any(s.label < 0.5 for s in val):
        return _UserSplit(fit + val, [], cw)  # too little to validate on: train on everything
    return _UserSplit(fit, val, cw)


def validation_holdout(
    events: Sequence[Event], videos: Mapping[str, Video], now: int, config: TrainConfig | None = None
) -> set[str]:
    """The bvids train_users holds out of this user's own events to validate on."""
    cfg = config or TrainConfig()
    samples, cw = make_samples(events, (), videos, now, cfg)
    return {s.bvid for s in _split(samples, cw, cfg).val}


def _train_chunk(
    data: Mapping[str, UserData],
    videos: Mapping[str, Video],
    shared: SharedSignals | None,
    fusion_shared: SharedSignals | None,
    now: int,
    cfg: TrainConfig,
) -> dict[str, UserModel]:
    keys = list(data)
    splits = [_split(*make_samples(d.events, d.negatives_pool, videos, now, cfg), cfg) for d in data.values()]
    for sp, d in zip(splits, data.values()):
        sp.followed = frozenset(d.followed)
    bvids = sorted({s.bvid for sp in splits for s in sp.all})
    table = encode_videos([videos[b] for b in bvids], cfg, now)
    row = {b: i for i, b in enumerate(bvids)}
    has_val = torch.tensor([bool(sp.val) for sp in splits])

    # phase 1: fit part, early stopping on the user's validation part. Each user occupies
    # `ensemble` x len(l2_grid) rows of the batch (members start from different initial weights);
    # each member keeps the pull strength that validated best.
    grid = cfg.l2_grid or (cfg.l2_pull,)
    e, g = cfg.ensemble, len(grid)
    rep = [sp for sp in splits for _ in range(e * g)]  # row (u*e + m)*g + j
    rep_val = has_val.repeat_interleave(e * g)
    model = stacked_init(len(rep), cfg, period=e * g, members=lambda r: r // g)
    fit_b = _batch(table, row, [sp.fit for sp in rep], rep)
    val_b = _batch(table, row, [sp.val for sp in rep], rep)
    steps = torch.where(rep_val, cfg.max_steps, cfg.default_steps)
    l2 = torch.tensor(grid, dtype=torch.float32).repeat(len(keys) * e)
    best_step, best_auc = _fit(model, fit_b, val_b, steps, rep_val, l2, cfg)
    default = min(range(g), key=lambda j: abs(grid[j] - cfg.l2_pull))  # users without validation data
    pick = torch.where(has_val.repeat_interleave(e), best_auc.view(-1, g).argmax(1), default)
    chosen = torch.arange(len(keys) * e) * g + pick  # one row per (user, member)
    model = _select(model, chosen, cfg)
    weights = _choose_fusion(model, e, table, row, splits, fusion_shared, cfg)

    # phase 2: refit on everything for the number of steps each member's validation chose
    members = [sp for sp in splits for _ in range(e)]
    full_b = _batch(table, row, [sp.all for sp in members], members)
    if cfg.refit and bool(has_val.any()):
        model = stacked_init(len(keys) * e, cfg, period=e, members=lambda r: r)
        _fit(model, full_b, None, best_step[chosen], torch.zeros(len(keys) * e, dtype=torch.bool), l2[chosen], cfg)
    with torch.no_grad():  # every sample's logit, averaged over members: the rating reference
        logits = model(full_b).view(len(keys), e, -1).mean(1).numpy()
    return {
        k: _finish(model, u, e, logits[u, : len(splits[u].all)], splits[u], videos, shared, weights[u], now, cfg)
        for u, k in enumerate(keys)
    }


def _select(model: WideDeep, rows: Tensor, cfg: TrainConfig) -> WideDeep:
    """A stacked model made of the given user rows of another."""
    out = WideDeep(len(rows), cfg)
    with torch.no_grad():
        for p, q in zip(out.parameters(), model.parameters()):
            p.copy_(q[rows])
    return out


def _batch(
    table: ItemTable, row: dict[str, int], per_user: Sequence[list[Sample]], users: Sequence[_UserSplit]
) -> Batch:
    """Pad users to the same length; padded samples have weight 0 and point at item 0. `users`: whose
    rows these are (their class weights and followings)."""
    n = max(1, max(len(s) for s in per_user))
    idx = np.zeros((len(per_user), n), dtype=np.int64)
    label = np.zeros((len(per_user), n), dtype=np.float32)
    weight = np.zeros((len(per_user), n), dtype=np.float32)
    for u, samples in enumerate(per_user):
        idx[u, : len(samples)] = [row[s.bvid] for s in samples]
        label[u, : len(samples)] = [s.label for s in samples]
        weight[u, : len(samples)] = [s.weight for s in samples]
    batch = {k: torch.from_numpy(v[idx]) for k, v in table_arrays(table).items()}
    follows = {sp.followed for sp in users if sp.followed}
    if follows:  # the follow column is per user: 1 where this user follows the video's uploader
        per_set = {f: table.followed(f) for f in follows}
        batch["follow"] = torch.from_numpy(
            np.stack(
                [
                    per_set[sp.followed][idx[u]] if sp.followed else np.zeros(n, dtype=np.float32)
                    for u, sp in enumerate(users)
                ]
            )
        )
    batch.update(
        label=torch.from_numpy(label),
        weight=torch.from_numpy(weight),
        cw=torch.tensor([sp.cw for sp in users], dtype=torch.float32).unsqueeze(1),
    )
    return batch


Forward = Callable[[Batch], Tensor]


def _loss(forward: Forward, b: Batch) -> Tensor:
    """Per-user weighted BCE with the positive label mass scaled by the user's class weight -> [U]."""
    z = forward(b)
    y, w, cw = b["label"], b["weight"], b["cw"]
    per = cw * y * torch.nn.functional.softplus(-z) + (1 - y) * torch.nn.functional.softplus(z)
    return (w * per).sum(1) / (w * (cw * y + 1 - y)).sum(1).clamp(min=1e-9)


def _val_auc(forward: Forward, b: Batch) -> Tensor:
    """Per-user AUC of positives (label >= 0.5) over negatives -> [U], by ranks (O(N log N)).
    Ranking, not calibration, is what the user sees; validation loss stopped far too early."""
    real = b["weight"] > 0
    z = forward(b).masked_fill(~real, float("-inf"))  # padding ranks below every real sample
    ranks = torch.empty_like(z)
    ranks.scatter_(1, z.argsort(1), torch.arange(1, z.shape[1] + 1, dtype=z.dtype).expand_as(z).contiguous())
    pos = real & (b["label"] >= 0.5)
    n_pos, n_neg = pos.sum(1).float(), (real & ~pos).sum(1).float()
    n_pad = (~real).sum(1).float()
    rank_sum = (ranks * pos).sum(1) - n_pad * n_pos
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg).clamp(min=1)


def _rows(x: Tensor, rows: Tensor) -> Tensor:
    return x.index_select(0, rows)


@dataclass
class _Working:
    """The rows still being trained: their indices into the full-size state, their own state (the
    working rows of every per-row quantity) and their rows of the batches."""

    rows: Tensor
    state: dict[str, Tensor]
    train: Batch
    val: Batch | None
    live: Tensor  # working rows not yet written out


def _fit(
    model: WideDeep, train: Batch, val: Batch | None, steps: Tensor, has_val: Tensor, l2: Tensor, cfg: TrainConfig
) -> tuple[Tensor, Tensor]:
    """Full-batch Adam (torch's fused kernel) over stacked parameters; a row that stops is written
    out at once with the weights it stopped with, which keeps batched training equal to training
    each user alone. Users with validation data keep their best-on-validation weights. Returns the
    steps used and the best validation AUC per user (-1 without validation)."""
    names = [n for n, _ in model.named_parameters()]
    full = _fit_state(model, steps, has_val, l2)  # every per-row quantity, full size
    _run_steps(model, full, train, val, names, int(steps.max()), cfg)
    _keep_weights(model, full, validated=val is not None)
    best_step = torch.where(full["has_val"], full["best_step"], steps) if val is not None else steps
    return best_step, full["best_auc"]


def _run_steps(
    model: WideDeep,
    full: dict[str, Tensor],
    train: Batch,
    val: Batch | None,
    names: Sequence[str],
    n_steps: int,
    cfg: TrainConfig,
) -> None:
    """Every row's steps, until each has used its own number or stopped early; all rows end written
    out into `full`. Every active row has taken the same number of steps, so one bias correction
    serves them all. When a quarter of the working rows have stopped, the working set is compacted
    (stopped users cost nothing afterwards)."""
    work = _Working(
        torch.arange(len(full["steps"])),
        {k: x.clone() for k, x in full.items()},
        train,
        val,
        torch.ones(len(full["steps"]), dtype=torch.bool),
    )
    params, opt = _adam(work.state, names, 0, cfg)
    for step in range(n_steps):
        active = (step < work.state["steps"]) & ~work.state["stopped"]
        _write_stopped(full, work, active)
        if not bool(active.any()):
            break
        if int(active.sum()) <= 0.75 * len(work.rows):
            work = _compact(full, work, active, train, val)
            active = work.live
            params, opt = _adam(work.state, names, step, cfg)
        forward: Forward = lambda b, params=params: functional_call(model, params, (b,))  # noqa: E731
        _adam_step(forward, params, opt, work, names)
        if work.val is not None:
            _track_validation(forward, work.val, params, work.state, active, step, names, cfg)
    _write_rows(full, work.state, work.rows, work.live)


def _fit_state(model: WideDeep, steps: Tensor, has_val: Tensor, l2: Tensor) -> dict[str, Tensor]:
    """Per row: weights (p), the shared initialisation they are pulled toward (p0), Adam's moments
    (m, v), the best-on-validation weights (b) and the early-stopping bookkeeping."""
    u = len(steps)
    full: dict[str, Tensor] = {}
    for n, p in model.named_parameters():
        full.update(
            {
                f"p:{n}": p.detach().clone(),
                f"p0:{n}": p.detach().clone(),
                f"m:{n}": torch.zeros_like(p),
                f"v:{n}": torch.zeros_like(p),
                f"b:{n}": p.detach().clone(),
            }
        )
    full.update(
        steps=steps.clone(),
        has_val=has_val.clone(),
        l2=l2.clone(),
        best_auc=torch.full((u,), -1.0),
        best_step=steps.clone(),
        bad=torch.zeros(u, dtype=torch.long),
        stopped=torch.zeros(u, dtype=torch.bool),
    )
    return full


def _write_stopped(full: dict[str, Tensor], work: _Working, active: Tensor) -> None:
    """Rows that have just stopped are written out with the weights they have now."""
    if bool((work.live & ~active).any()):
        _write_rows(full, work.state, work.rows, work.live & ~active)
        work.live = active


def _compact(full: dict[str, Tensor], work: _Working, active: Tensor, train: Batch, val: Batch | None) -> _Working:
    """A working set of only the active rows (the others are written out first)."""
    _write_rows(full, work.state, work.rows, active)
    rows = work.rows[active]
    return _Working(
        rows,
        {k: _rows(x, rows) for k, x in full.items()},
        {k: _rows(x, rows) for k, x in train.items()},
        {k: _rows(x, rows) for k, x in val.items()} if val is not None else None,
        active[active],
    )


def _adam_step(
    forward: Forward, params: dict[str, Tensor], opt: torch.optim.Adam, work: _Working, names: Sequence[str]
) -> None:
    """One step on the training loss plus the pull toward the shared initialisation: d(l2 |p - p0|^2)."""
    grads = torch.autograd.grad(_loss(forward, work.train).sum(), list(params.values()))
    w = work.state
    with torch.no_grad():
        for n, g in zip(names, grads):
            p = params[n]
            p.grad = g.addcmul_(w["l2"].view((-1,) + (1,) * (p.dim() - 1)), p - w[f"p0:{n}"], value=2.0)
        opt.step()


@torch.no_grad()
def _track_validation(
    forward: Forward,
    val: Batch,
    params: dict[str, Tensor],
    w: dict[str, Tensor],
    active: Tensor,
    step: int,
    names: Sequence[str],
    cfg: TrainConfig,
) -> None:
    """Keep each row's best-on-validation weights and step; stop a row after `patience` steps without
    improvement."""
    va = _val_auc(forward, val)
    # the first min_steps always count as improvements: a handful of validation positives is noisy
    improved = active & w["has_val"] & ((va > w["best_auc"] + 1e-4) | (step < cfg.min_steps))
    w["best_auc"] = torch.where(improved, va, w["best_auc"])
    w["best_step"] = torch.where(improved, step + 1, w["best_step"])
    if bool(improved.any()):
        at = improved.nonzero().squeeze(1)
        for n in names:
            w[f"b:{n}"].index_copy_(0, at, params[n].index_select(0, at))
    w["bad"] = torch.where(improved, 0, w["bad"] + active.long())
    w["stopped"] = w["stopped"] | (w["has_val"] & (w["bad"] >= cfg.patience))


@torch.no_grad()
def _keep_weights(model: WideDeep, full: dict[str, Tensor], validated: bool) -> None:
    """Load each row's final weights into the model: its best-on-validation ones where it had validation data."""
    for n, p in model.named_parameters():
        keep_best = full["has_val"].view((-1,) + (1,) * (p.dim() - 1)) & validated
        p.copy_(torch.where(keep_best, full[f"b:{n}"], full[f"p:{n}"]))


def _adam(
    w: dict[str, Tensor], names: Sequence[str], step: int, cfg: TrainConfig
) -> tuple[dict[str, Tensor], torch.optim.Adam]:
    """Fused Adam over the working rows, its moments living in w (they survive compaction)."""
    params = {n: w[f"p:{n}"].requires_grad_() for n in names}
    opt = torch.optim.Adam(list(params.values()), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, fused=True)
    for n, p in params.items():
        opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": w[f"m:{n}"], "exp_avg_sq": w[f"v:{n}"]}
    return params, opt


@torch.no_grad()
def _write_rows(full: dict[str, Tensor], w: dict[str, Tensor], rows: Tensor, which: Tensor) -> None:
    """Copy the working rows selected by `which` back into the full-size state."""
    for k in full:
        full[k][rows[which]] = w[k][which].detach()


def _history(samples: Sequence[Sample]) -> list[str]:
    return [s.bvid for s in samples if s.kind in ("explicit", "thumb_up", "later", "watch")]


@torch.no_grad()
def _choose_fusion(
    model: WideDeep,
    e: int,
    table: ItemTable,
    row: dict[str, int],
    splits: Sequence[_UserSplit],
    shared: SharedSignals | None,
    cfg: TrainConfig,
) -> list[tuple[float, float]]:
    """Per user: the (kNN, EASE) weights that rank the validation slice best (fusion.choose_weights),
    scored with the members' mean logit as ranking scores them."""
    if shared is None:
        return [(0.0, 0.0)] * len(splits)
    batch = _batch(table, row, [sp.val for sp in splits for _ in range(e)], [sp for sp in splits for _ in range(e)])
    z = model(batch).view(len(splits), e, -1).mean(1).numpy()
    slices = [_validation_slice(z[u, : len(sp.val)], sp, shared) if sp.val else None for u, sp in enumerate(splits)]
    return fusion.choose_weights(slices, fusion.weight_grid(cfg, shared.has_ease), cfg)


def _validation_slice(logits: np.ndarray, sp: _UserSplit, shared: SharedSignals) -> fusion.ValidationSlice:
    """The shared scores from the fit part's history, standardised over all the user's samples."""
    hist = _history(sp.fit)
    every, val = [s.bvid for s in sp.all], [s.bvid for s in sp.val]
    rows = []
    for score in (shared.scores, shared.ease_scores):
        mean, std = fusion.standardise(score(hist, every))
        rows.append((score(hist, val) - mean) / std)
    return fusion.ValidationSlice(logits, np.stack(rows), np.array([s.label >= 0.5 for s in sp.val]))


def _finish(
    model: WideDeep,
    u: int,
    e: int,
    logits: np.ndarray,
    sp: _UserSplit,
    videos: Mapping[str, Video],
    shared: SharedSignals | None,
    weights: tuple[float, float],
    now: int,
    cfg: TrainConfig,
) -> UserModel:
    state = {k: v[u * e : (u + 1) * e].detach().clone() for k, v in model.state_dict().items()}
    samples = sp.all
    history = _history(samples)[-cfg.history_cap :]
    items = [s.bvid for s in samples]
    um = UserModel(state, cfg, 0.0, 0.0, 1.0, np.zeros(101), history, _profile(state, samples, videos, cfg), now)
    cf = ease = None
    if shared is not None:
        cf = shared.scores(history, items)
        um.fusion, (um.cf_mean, um.cf_std) = weights[0], fusion.standardise(cf)
        if shared.has_ease:
            ease = shared.ease_scores(history, items)
            um.ease_fusion, (um.ease_mean, um.ease_std) = weights[1], fusion.standardise(ease)
    scores = um.final_scores(logits, cf, ease)
    ref = np.array([s.kind == "pool" for s in samples])
    ref_scores = scores[ref] if ref.sum() >= 20 else scores
    um.ref_scores = np.quantile(ref_scores, np.linspace(0, 1, 101)) if ref_scores.size else np.zeros(101)
    return um


def _profile(
    state: dict[str, Tensor], samples: Sequence[Sample], videos: Mapping[str, Video], cfg: TrainConfig, top: int = 30
) -> dict[str, list[tuple[str, float]]]:
    """Names the user engaged with, scored by the wide weight of their bucket (what the model learnt).
    Hashed buckets are shared by several names: each bucket is shown once, under its most frequent
    name among the user's positives, so collisions do not fill the card with look-alike rows."""
    from collections import Counter

    from .features import hash_id

    liked = [videos[s.bvid] for s in samples if s.label >= 0.5] or [videos[s.bvid] for s in samples]
    tag_w, up_w, part_w = (state[f"wide.{n}"].mean(0) for n in ("tag", "uploader", "partition"))

    def ranked(names: list[tuple[str, str]], weights: Tensor, ns: str, buckets: int) -> list[tuple[str, float]]:
        best: dict[int, str] = {}
        for (name, key), _ in Counter(names).most_common():
            best.setdefault(hash_id(ns, key, buckets), name)
        return sorted(((n, float(weights[b])) for b, n in best.items()), key=lambda t: -t[1])[:top]

    return {
        "tags": ranked([(t, t) for v in liked for t in v.tags[: cfg.max_tags]], tag_w, "tag", cfg.tag_buckets),
        "uploaders": ranked([(v.owner_name, str(v.owner_mid)) for v in liked], up_w, "up", cfg.uploader_buckets),
        "partitions": ranked([(v.tname, str(v.tid)) for v in liked if v.tname], part_w, "tid", cfg.partition_buckets),
    }
