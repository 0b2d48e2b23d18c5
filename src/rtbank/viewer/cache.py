"""Bounded in-process caches for the viewer: assembled volumes, parsed structure sets, doses, planes.

Each cache is an LRU bounded by bytes. Loading is single-flight: when several requests (the browser
prefetching neighbouring slices) ask for a volume that is not there yet, one thread reads it and the
others wait for that result instead of reading the same files again. Keys always include what makes the
content unique (blob keys of the files), so a late-arriving slice or a corrected object gives a new key
and the stale entry simply ages out.

Every web process has its own caches; their sizes come from settings (``RTBANK_VIEWER_CACHE_MB``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    bytes: int = 0
    entries: int = 0


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class LruCache(Generic[T]):
    """A thread-safe LRU of at most ``max_bytes`` (an entry larger than that is returned, not kept)."""

    def __init__(self, name: str, max_bytes: int, size: Callable[[T], int]) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self._size = size
        self._items: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def peek(self, key: Hashable) -> T | None:
        """The cached value without loading (and without counting a miss)."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            self.stats.hits += 1
            return found[0]

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value, or ``load()`` once for all concurrent callers (its exception is re-raised)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.stats.hits += 1
                return found[0]
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
                self.stats.misses += 1
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            value = load()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            self._store(key, value)
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def put(self, key: Hashable, value: T) -> None:
        self._store(key, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.stats = CacheStats()

    def _store(self, key: Hashable, value: T) -> None:
        size = max(int(self._size(value)), 1)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.stats.bytes -= old[1]
            self._items[key] = (value, size)
            self.stats.bytes += size
            while self.stats.bytes > self.max_bytes and self._items:
                _, (_, evicted) = self._items.popitem(last=False)
                self.stats.bytes -= evicted
                self.stats.evictions += 1
            self.stats.entries = len(self._items)


class SeenSet:
    """A bounded set of recent keys (which viewer session already logged which kind of read)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; True if it is new."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            while len(self._keys) > self.max_entries:
                self._keys.popitem(last=False)
            return True

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
