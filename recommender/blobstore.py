"""Models as bytes: the same safetensors payload as the files, kept by any backend that stores
versioned blobs (the database in distributed mode), so a model trained on one machine ranks on all.

recommender/ knows no database: the backend is handed in (storage/model_blobs.py implements it).
"""

from __future__ import annotations

import json
import struct
import threading
from collections import OrderedDict
from typing import Protocol

import numpy as np
import torch
from safetensors.numpy import load as np_load
from safetensors.numpy import save as np_save
from safetensors.torch import load as pt_load
from safetensors.torch import save as pt_save

from .shared import SharedSignals
from .store import _meta, _model_from
from .twotower import TwoTower
from .user_model import UserModel

SHARED_KEY = "shared"  # the collaborative signals the newest models were trained with
SHARED_DROPS_KEY = "shared-drops"  # one (empty) version per /forget: the signals' generation
TWOTOWER_KEY = "twotower"  # the shared two-tower recall model
TWOTOWER_DROPS_KEY = "twotower-drops"  # its generation, as SHARED_DROPS_KEY


class BlobBackend(Protocol):
    """Versioned bytes under a key; versions only grow; `stamp` tells two writes of one version apart."""

    def latest(self, key: str) -> tuple[int, int] | None: ...  # (version, stamp)
    def read(self, key: str, version: int) -> bytes | None: ...
    def write(self, key: str, data: bytes, keep: int) -> int: ...  # the new version
    def delete(self, key: str) -> None: ...
    def keys(self) -> list[str]: ...


class ModelRepository(Protocol):
    """What jobs and handlers use: recommender.ModelStore (files) and BlobModelStore (bytes) both are one."""

    shared_generation: int
    twotower_generation: int

    def user_keys(self) -> list[str]: ...
    def latest_version(self, user_key: str) -> int | None: ...
    def save(self, user_key: str, model: UserModel) -> int: ...
    def load(self, user_key: str) -> UserModel | None: ...
    def delete(self, user_key: str) -> None: ...
    def save_shared(self, shared: SharedSignals, generation: int | None = None) -> bool: ...
    def drop_shared(self) -> None: ...
    def load_shared(self) -> SharedSignals | None: ...
    def save_twotower(self, tower: TwoTower, generation: int | None = None) -> bool: ...
    def drop_twotower(self) -> None: ...
    def load_twotower(self) -> TwoTower | None: ...


def model_to_bytes(model: UserModel) -> bytes:
    tensors = {k: v.contiguous() for k, v in model.state.items()}
    tensors["ref_scores"] = torch.from_numpy(np.asarray(model.ref_scores, dtype=np.float64))
    return pt_save(tensors, metadata={"meta": json.dumps(_meta(model), ensure_ascii=False)})


def model_from_bytes(data: bytes) -> UserModel:
    return _model_from(pt_load(data), json.loads(_metadata(data)["meta"]))


def shared_to_bytes(shared: SharedSignals) -> bytes:
    return np_save(shared.tensors(), metadata=shared.metadata())


def shared_from_bytes(data: bytes) -> SharedSignals:
    return SharedSignals.from_tensors(np_load(data), _metadata(data))


def twotower_to_bytes(tower: TwoTower) -> bytes:
    return pt_save(tower.tensors(), metadata=tower.metadata())


def twotower_from_bytes(data: bytes) -> TwoTower:
    return TwoTower.from_tensors(pt_load(data), _metadata(data))


def _metadata(data: bytes) -> dict[str, str]:
    """safetensors: 8-byte little-endian header length, then the JSON header (never code)."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]).get("__metadata__") or {}


class BlobModelStore:
    """ModelStore over a BlobBackend. Every load asks the backend for the newest version (one small
    query) and reads the blob only when it changed: a bounded LRU of decoded models per process."""

    def __init__(self, backend: BlobBackend, keep: int = 2, cache_size: int = 512) -> None:
        self.backend = backend
        self.keep = keep
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[tuple[int, int], object]] = OrderedDict()
        self._lock = threading.Lock()  # training saves on its thread while the loop loads

    @property
    def shared_generation(self) -> int:
        """+1 for each drop, in the database, so a /forget on the front voids a worker's pass."""
        latest = self.backend.latest(SHARED_DROPS_KEY)
        return latest[0] if latest else 0

    def user_keys(self) -> list[str]:
        """Every stored key (users' and the shared signals'); start-up looks for users who are gone."""
        return self.backend.keys()

    def latest_version(self, user_key: str) -> int | None:
        latest = self.backend.latest(user_key)
        return latest[0] if latest else None

    def save(self, user_key: str, model: UserModel) -> int:
        version = self.backend.write(user_key, model_to_bytes(model), self.keep)
        with self._lock:
            self._cache.pop(user_key, None)  # the next load reads the stamp it was given
        return version

    def load(self, user_key: str) -> UserModel | None:
        return self._cached(user_key, model_from_bytes)

    def delete(self, user_key: str) -> None:
        self.backend.delete(user_key)
        with self._lock:
            self._cache.pop(user_key, None)

    def save_shared(self, shared: SharedSignals, generation: int | None = None) -> bool:
        if generation is not None and generation != self.shared_generation:
            return False  # dropped meanwhile: built from the behaviour of someone who left
        self.backend.write(SHARED_KEY, shared_to_bytes(shared), self.keep)
        return True

    def drop_shared(self) -> None:
        self.backend.write(SHARED_DROPS_KEY, b"", 1)
        self.backend.delete(SHARED_KEY)
        with self._lock:
            self._cache.pop(SHARED_KEY, None)

    def load_shared(self) -> SharedSignals | None:
        return self._cached(SHARED_KEY, shared_from_bytes)

    @property
    def twotower_generation(self) -> int:
        latest = self.backend.latest(TWOTOWER_DROPS_KEY)
        return latest[0] if latest else 0

    def save_twotower(self, tower: TwoTower, generation: int | None = None) -> bool:
        if generation is not None and generation != self.twotower_generation:
            return False  # dropped meanwhile: trained on the behaviour of someone who left
        self.backend.write(TWOTOWER_KEY, twotower_to_bytes(tower), self.keep)
        return True

    def drop_twotower(self) -> None:
        self.backend.write(TWOTOWER_DROPS_KEY, b"", 1)
        self.backend.delete(TWOTOWER_KEY)
        with self._lock:
            self._cache.pop(TWOTOWER_KEY, None)

    def load_twotower(self) -> TwoTower | None:
        return self._cached(TWOTOWER_KEY, twotower_from_bytes)

    def _cached(self, key: str, decode):
        latest = self.backend.latest(key)
        with self._lock:
            if latest is None:
                self._cache.pop(key, None)
                return None
            hit = self._cache.get(key)
            if hit is not None and hit[0] == latest:
                self._cache.move_to_end(key)
                return hit[1]
        data = self.backend.read(key, latest[0])
        if data is None:  # deleted between the two queries
            return None
        value = decode(data)
        with self._lock:
            self._cache[key] = (latest, value)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return value
