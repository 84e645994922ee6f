"""Per-user model files: safetensors, atomic writes, versioned, pruned; loading never unpickles."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file as pt_load_file
from safetensors.torch import save_file

from .shared import SharedSignals
from .twotower import TwoTower
from .types import TrainConfig
from .user_model import UserModel

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERSION = re.compile(r"^v(\d{8})\.safetensors$")
_SHARED = "shared.safetensors"  # the collaborative signals the newest models were trained with
_TWOTOWER = "twotower.safetensors"  # the shared two-tower recall model
_STALE_TEMP_S = 3600  # a temp file this old was left by a process killed mid-save

log = logging.getLogger(__name__)


class ModelStore:
    """root/<user dir>/v00000001.safetensors; the newest `keep` versions are kept, and at most
    `max_cached` models stay in memory (least recently used first out; the rest reload from disk)."""

    def __init__(self, root: Path, keep: int = 2, max_cached: int = 256) -> None:
        self.root = Path(root)
        self.keep = keep
        self.max_cached = max(1, max_cached)
        self._cache: OrderedDict[str, tuple[int, UserModel]] = OrderedDict()
        self._shared: tuple[int, SharedSignals] | None = None
        self.shared_generation = 0  # +1 each time the signals are dropped
        self._twotower: tuple[int, TwoTower] | None = None
        self.twotower_generation = 0  # +1 each time the two-tower model is dropped
        self._lock = threading.Lock()  # file writes (held for a whole save)
        self._cache_lock = threading.Lock()  # the in-memory cache only: loads never wait for a save

    def _dir(self, user_key: str) -> Path:
        # user keys become directory names: anything unusual is hashed so it cannot escape root
        name = user_key if _SAFE_KEY.match(user_key) else "h" + hashlib.sha256(user_key.encode()).hexdigest()[:32]
        return self.root / name

    def _versions(self, user_key: str) -> list[int]:
        d = self._dir(user_key)
        if not d.is_dir():
            return []
        return sorted(int(m.group(1)) for f in os.listdir(d) if (m := _VERSION.match(f)))

    def user_keys(self) -> list[str]:
        """The directory names holding models (user keys as given, or hashed when unusual)."""
        if not self.root.is_dir():
            return []
        return sorted(entry.name for entry in os.scandir(self.root) if entry.is_dir())

    def latest_version(self, user_key: str) -> int | None:
        v = self._versions(user_key)
        return v[-1] if v else None

    def save(self, user_key: str, model: UserModel) -> int:
        d = self._dir(user_key)
        d.mkdir(parents=True, exist_ok=True)
        with self._lock:
            _remove_stale_temps(d)
            version = (self.latest_version(user_key) or 0) + 1
            tensors = {k: v.contiguous() for k, v in model.state.items()}
            tensors["ref_scores"] = torch.from_numpy(np.asarray(model.ref_scores, dtype=np.float64))
            fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
            os.close(fd)
            try:
                save_file(tensors, tmp, metadata={"meta": json.dumps(_meta(model), ensure_ascii=False)})
                _fsync(tmp)  # the bytes are on disk before the name points at them
                os.replace(tmp, d / f"v{version:08d}.safetensors")  # readers see old or new, never half
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            for old in self._versions(user_key)[: -self.keep]:
                (d / f"v{old:08d}.safetensors").unlink(missing_ok=True)
            self._remember(user_key, version, model)
        return version

    def load(self, user_key: str) -> UserModel | None:
        """The newest readable version; an unreadable newest file (cut short by a crash) falls back
        to the one before it."""
        versions = self._versions(user_key)
        if not versions:
            with self._cache_lock:
                self._cache.pop(user_key, None)
            return None
        hit = self._cache.get(user_key)
        if hit and hit[0] == versions[-1]:
            with self._cache_lock:
                if user_key in self._cache:
                    self._cache.move_to_end(user_key)
            return hit[1]
        for version in reversed(versions):
            try:
                model = _read(self._dir(user_key) / f"v{version:08d}.safetensors")
            except FileNotFoundError:
                continue  # pruned or deleted meanwhile
            except Exception as exc:  # noqa: BLE001 - a damaged file must not take the user's picks down
                log.warning(
                    "model %s v%d unreadable (%s); trying the previous version", user_key, version, type(exc).__name__
                )
                continue
            # Kept under the newest number, so a damaged newest file is not re-read on every load.
            self._remember(user_key, versions[-1], model)
            return model
        return None

    @property
    def cached(self) -> int:
        """How many models are held in memory."""
        return len(self._cache)

    def _remember(self, user_key: str, version: int, model: UserModel) -> None:
        with self._cache_lock:
            self._cache[user_key] = (version, model)
            self._cache.move_to_end(user_key)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)

    def save_shared(self, shared: SharedSignals, generation: int | None = None) -> bool:
        """Atomically replace the signals. Refused (False) when they were dropped after `generation`
        (shared_generation when the behaviour they were built from was read): they may carry the
        behaviour of someone who has since used /forget."""
        with self._lock:
            if generation is not None and generation != self.shared_generation:
                return False
            self.root.mkdir(parents=True, exist_ok=True)
            shared.save(self.root / _SHARED)  # atomic replace
            self._shared = (os.stat(self.root / _SHARED).st_mtime_ns, shared)
            return True

    def drop_shared(self) -> None:
        """Delete the signals (/forget: they were built from everyone's behaviour, the leaver's too);
        ranking goes on without them until they are built again."""
        with self._lock:
            self.shared_generation += 1
            self._shared = None
            (self.root / _SHARED).unlink(missing_ok=True)

    def load_shared(self) -> SharedSignals | None:
        """The newest saved signals (read once per write, then served from memory)."""
        try:
            stamp = os.stat(self.root / _SHARED).st_mtime_ns
        except FileNotFoundError:
            return None
        if self._shared is None or self._shared[0] != stamp:
            self._shared = (stamp, SharedSignals.load(self.root / _SHARED))
        return self._shared[1]

    def save_twotower(self, tower: TwoTower, generation: int | None = None) -> bool:
        """Atomically replace the two-tower model; refused (False) when it was dropped after
        `generation` (as save_shared)."""
        with self._lock:
            if generation is not None and generation != self.twotower_generation:
                return False
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            os.close(fd)
            try:
                save_file(tower.tensors(), tmp, metadata=tower.metadata())
                _fsync(tmp)
                os.replace(tmp, self.root / _TWOTOWER)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            self._twotower = (os.stat(self.root / _TWOTOWER).st_mtime_ns, tower)
            return True

    def drop_twotower(self) -> None:
        """Delete the two-tower model (/forget of a user whose behaviour trained it)."""
        with self._lock:
            self.twotower_generation += 1
            self._twotower = None
            (self.root / _TWOTOWER).unlink(missing_ok=True)

    def load_twotower(self) -> TwoTower | None:
        try:
            stamp = os.stat(self.root / _TWOTOWER).st_mtime_ns
        except FileNotFoundError:
            return None
        if self._twotower is None or self._twotower[0] != stamp:
            path = str(self.root / _TWOTOWER)
            with safe_open(path, framework="pt") as f:
                metadata = f.metadata()
            self._twotower = (stamp, TwoTower.from_tensors(pt_load_file(path), metadata))
        return self._twotower[1]

    def delete(self, user_key: str) -> None:
        with self._lock:
            with self._cache_lock:
                self._cache.pop(user_key, None)
            shutil.rmtree(self._dir(user_key), ignore_errors=True)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temps(d: Path) -> None:
    """Temp files of saves killed midway (a live save's temp file is seconds old, not an hour)."""
    cutoff = time.time() - _STALE_TEMP_S
    for f in d.glob("*.tmp"):
        try:
            if f.stat().st_mtime < cutoff:
                f.unlink()
        except FileNotFoundError:
            pass


def _meta(m: UserModel) -> dict[str, object]:
    return {
        "cfg": dataclasses.asdict(m.cfg),
        "fusion": m.fusion,
        "cf_mean": m.cf_mean,
        "cf_std": m.cf_std,
        "ease_fusion": m.ease_fusion,
        "ease_mean": m.ease_mean,
        "ease_std": m.ease_std,
        "history": m.history,
        "profile": m.profile,
        "trained_at": m.trained_at,
    }


def _read(path: Path) -> UserModel:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["meta"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return _model_from(tensors, meta)


def _model_from(tensors: dict[str, torch.Tensor], meta: dict) -> UserModel:
    """A model from its safetensors tensors and metadata (a file here, a database blob elsewhere)."""
    ref = tensors.pop("ref_scores").numpy()
    cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["cfg"].items()})
    profile = {k: [(str(n), float(w)) for n, w in v] for k, v in meta["profile"].items()}
    return UserModel(
        tensors,
        cfg,
        float(meta["fusion"]),
        float(meta["cf_mean"]),
        float(meta["cf_std"]),
        ref,
        list(meta["history"]),
        profile,
        int(meta["trained_at"]),
        float(meta.get("ease_fusion", 0.0)),
        float(meta.get("ease_mean", 0.0)),
        float(meta.get("ease_std", 1.0)),
    )
