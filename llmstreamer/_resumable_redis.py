"""The log of resumable streams on Redis Streams, shared by every process and machine on one Redis.

Keys, per stream (``P`` is the prefix): ``P:stream:<id>`` a Redis stream of entries
``{t: type, d: JSON data}``; ``P:stream:<id>:status`` the status; ``P:stream:<id>:cancel`` set by
`cancel` from anywhere. Every key expires ``ttl`` after the stream's last write.

Entry ids are chosen by the producer, not by Redis: ``<ms the stream started>-<n>`` for its
n-th event. They grow like Redis's own, and they make writing idempotent: when a reply is lost
(Redis acknowledged the batch, then the connection broke), the writer sends the batch again, and
Redis refuses the entries it already has ("equal or smaller than the top item") instead of
storing them twice.

The producer's worker thread only puts events on an in-process queue. One writer thread per
`RedisLog` (alive while this process has streams running) takes everything that is ready, for
every stream, and sends it as one pipeline: one round trip for many ``XADD``\\ s, because a
round trip per event (~100 µs) would cost more than the stream itself. Between batches it polls
the cancel keys of its streams (one ``MGET``, every `_POLL` s). When Redis fails, the writer
keeps the events Redis has not acknowledged and retries them, in order, for `_GRACE` s; then it
cancels its streams (no more tokens are paid for an answer nobody can read) and drops them.

Readers use ``XREAD BLOCK``, which wakes as soon as an entry is added. A producing process
renews ``P:stream:<id>:alive`` every second (it expires after `_ALIVE` s); a reader that finds a
running stream without it knows the producer died (a killed worker or machine) and ends the log
itself, atomically, with an ``error`` event (`StreamError`), so no follower waits forever.
Every ``redis`` exception becomes `StreamLogError` at `_translated`, the one boundary.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from ._payloads import dumps
from ._resumable_log import Entry, Producing, unknown
from .errors import ConfigurationError, StreamLogError

__all__ = ["RedisLog"]

log = logging.getLogger(__name__)

_POLL = 0.2  # seconds between the writer's checks for cancels
_BEAT = 1.0  # seconds between the writer's heartbeats for its running streams
_ALIVE = 15.0  # seconds without a heartbeat after which a running stream's producer is dead
_GRACE = 10.0  # seconds the writer retries unacknowledged events before giving up
_RETRY = 0.25  # seconds between those retries
_MAX_BATCH = 4096  # events in one pipeline at most
_READ_COUNT = 512  # entries per XREAD at most
_CLOSE_WAIT = 5.0  # seconds close() waits for this process's streams to be written
_MAX_BLOCK = 2.0  # seconds one XREAD BLOCK waits at most
_MAX_CONNECTIONS = 10_000  # every follower waiting in XREAD BLOCK holds one (redis-py's default is 100)
_SOCKET_TIMEOUT = 10.0  # a silent Redis fails a command after this long (reads block 1 s at most)
_CONNECT_TIMEOUT = 2.0
_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")

_Item = tuple[Producing, str, str, str, "str | None"]  # producing, entry id, type, data, end

# KEYS: status, alive, events; ARGV: error data, ttl ms. Ends a running stream whose producer is gone.
_BURY = """
if redis.call('GET', KEYS[1]) == 'running' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XADD', KEYS[3], '*', 't', 'error', 'd', ARGV[1])
  redis.call('SET', KEYS[1], 'error', 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  return 1
end
return 0
"""
_DEAD = {"error": "StreamError", "message": "the process generating this answer stopped", "provider": None}


@contextmanager
def _translated(doing: str) -> Iterator[None]:
    """Turn any ``redis`` (or socket) exception into `StreamLogError`."""
    import redis

    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise StreamLogError(f"Redis failed while {doing}: {type(exc).__name__}: {exc}") from exc


class RedisLog:
    """Resumable-stream logs in Redis (see the module docstring)."""

    def __init__(self, url: str, *, ttl: float, prefix: str) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise ConfigurationError("a redis:// log needs the redis client: pip install 'llmstreamer[redis]'") from exc
        self._prefix = prefix
        self._ttl_ms = max(1, round(ttl * 1000))
        self._refresh = min(ttl / 3, 60.0)  # how often running streams' keys get their TTL renewed
        # One immediate retry replaces a pooled connection that a Redis restart left dead.
        try:
            self._client: Any = redis.Redis.from_url(
                url,
                socket_timeout=_SOCKET_TIMEOUT,
                socket_connect_timeout=_CONNECT_TIMEOUT,
                retry=Retry(NoBackoff(), 1),
                max_connections=_MAX_CONNECTIONS,
            )
        except ValueError as exc:  # a malformed URL (the URL may hold a password: not repeated)
            raise ConfigurationError(f"not a usable Redis URL: {exc}") from exc
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._producing: dict[str, Producing] = {}
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self.grace = _GRACE  # tests shorten it
        self.alive_ms = round(_ALIVE * 1000)  # and this

    def _key(self, stream_id: str) -> str:
        return f"{self._prefix}:stream:{stream_id}"

    # --- producing ------------------------------------------------------------------------------

    def open(self, stream_id: str) -> Producing:
        key = self._key(stream_id)
        with _translated("starting a stream"):
            pipe = self._client.pipeline(transaction=False)
            pipe.set(key + ":status", "running", px=self._ttl_ms)
            pipe.set(key + ":alive", "1", px=self.alive_ms)
            pipe.execute()
        producing = Producing(stream_id, origin=time.time_ns() // 1_000_000)
        with self._lock:
            self._producing[stream_id] = producing
            if self._writer is None:
                # Not a daemon, like the streams' own threads: the process exits only after the
                # terminal events are in Redis (or Redis stayed down past the grace period).
                self._writer = threading.Thread(target=self._write_loop, name="llmstreamer-resumable-writer")
                self._writer.start()
        return producing

    def emit(self, producing: Producing, kind: str, data: str, end: str | None) -> None:
        producing.sent += 1
        self._queue.put((producing, f"{producing.origin}-{producing.sent}", kind, data, end))

    def abandon(self, producing: Producing) -> None:
        with self._lock:
            self._producing.pop(producing.stream_id, None)
        try:
            with _translated("forgetting a stream"):
                self._client.delete(self._key(producing.stream_id) + ":status")
        except StreamLogError as exc:
            log.debug("resumable stream: could not delete an abandoned stream's key (%s)", exc)

    def _write_loop(self) -> None:
        get = self._queue.get
        pending: list[_Item] = []
        failing_since: float | None = None
        retry_at = 0.0
        next_check = time.monotonic() + _POLL
        next_beat = time.monotonic() + _BEAT
        next_refresh = time.monotonic() + self._refresh
        while True:
            wait = _POLL if failing_since is None or not pending else max(0.0, retry_at - time.monotonic())
            try:
                pending.append(get(timeout=wait) if wait > 0 else get(block=False))
                while len(pending) < _MAX_BATCH:
                    pending.append(get(block=False))
            except queue.Empty:
                pass
            now = time.monotonic()
            if pending and now >= retry_at:
                try:
                    self._write(pending)
                    pending = []
                    failing_since = None
                except StreamLogError as exc:
                    retry_at = time.monotonic() + _RETRY
                    if failing_since is None:
                        log.warning("resumable stream: %s; retrying for %g s", exc, self.grace)
                        failing_since = now
                    elif now - failing_since >= self.grace:
                        self._give_up(pending, exc)
                        pending = []
            if now >= next_check and failing_since is None:
                next_check = now + _POLL
                beat, refresh = now >= next_beat, now >= next_refresh
                self._check(beat=beat, refresh=refresh)
                if beat:
                    next_beat = now + _BEAT
                if refresh:
                    next_refresh = now + self._refresh
            with self._lock:
                if not pending and not self._producing and self._queue.empty():
                    self._writer = None
                    return

    def _write(self, items: list[_Item]) -> None:
        """Send ``items`` in one pipeline: the XADDs in order, then each stream's status and TTLs."""
        pipe = self._client.pipeline(transaction=False)
        statuses: dict[str, str] = {}
        ttl = self._ttl_ms
        for producing, entry_id, kind, data, end in items:
            key = self._key(producing.stream_id)
            pipe.xadd(key, {"t": kind, "d": data}, id=entry_id)
            if end is not None or key not in statuses:
                statuses[key] = end or "running"
        for key, status in statuses.items():
            pipe.set(key + ":status", status, px=ttl)
            pipe.pexpire(key, ttl)
            if status != "running":
                pipe.delete(key + ":alive")
        with _translated("appending events"):
            results = pipe.execute(raise_on_error=False)
            for result in results[: len(items)]:
                if isinstance(result, Exception) and "equal or smaller" not in str(result):
                    raise result  # not a retried entry that Redis already had
        ended = [p.stream_id for p, _, _, _, end in items if end is not None]
        if ended:
            with self._lock:
                for stream_id in ended:
                    self._producing.pop(stream_id, None)

    def _check(self, *, beat: bool, refresh: bool) -> None:
        """Cancel the streams whose cancel key is set; send heartbeats and renew TTLs when asked."""
        with self._lock:
            producing = list(self._producing.values())
        if not producing:
            return
        keys = [self._key(p.stream_id) for p in producing]
        try:
            with _translated("checking for cancels"):
                pipe = self._client.pipeline(transaction=False)
                pipe.mget([k + ":cancel" for k in keys])
                for key in keys if beat else ():
                    pipe.set(key + ":alive", "1", px=self.alive_ms)
                for key in keys if refresh else ():
                    pipe.pexpire(key, self._ttl_ms)
                    pipe.set(key + ":status", "running", px=self._ttl_ms, xx=True)
                flags = pipe.execute()[0]
        except StreamLogError as exc:
            log.debug("resumable stream: %s", exc)
            return
        for p, flag in zip(producing, flags):
            if flag is not None and not p.cancelled:
                log.debug("resumable stream %s: cancel requested", p.stream_id)
                p.cancel()

    def _give_up(self, pending: list[_Item], exc: StreamLogError) -> None:
        """Redis stayed down past the grace period: cancel this process's streams, drop what is pending."""
        log.error("resumable stream: %s for %g s; cancelling %d stream(s)", exc, self.grace, len(self._producing))
        with self._lock:
            producing = list(self._producing.values())
            for stream_id in {p.stream_id for p, _, _, _, end in pending if end is not None}:
                self._producing.pop(stream_id, None)
        for p in producing:
            p.cancel()

    # --- reading --------------------------------------------------------------------------------

    def reader(self, stream_id: str, after: str | None) -> _RedisReader:
        if after is not None and (not isinstance(after, str) or not _ID.fullmatch(after)):
            raise ConfigurationError(f"not an event id of this log: {after!r} (expected <ms>-<seq>)")
        key = self._key(stream_id)
        with _translated("opening a stream"):
            status = self._client.get(key + ":status")
        if status is None:
            raise unknown(stream_id)
        return _RedisReader(self, stream_id, key, after or "0-0", finished=status != b"running")

    def status(self, stream_id: str) -> str | None:
        with _translated("reading a status"):
            value = self._client.get(self._key(stream_id) + ":status")
        return None if value is None else str(value.decode())

    def cancel(self, stream_id: str) -> bool:
        key = self._key(stream_id)
        with _translated("cancelling a stream"):
            status = self._client.get(key + ":status")
            if status is None:
                raise unknown(stream_id)
            if status != b"running":
                return False
            self._client.set(key + ":cancel", "1", px=self._ttl_ms)
        with self._lock:
            local = self._producing.get(stream_id)
        if local is not None:
            local.cancel()  # made here: no need to wait for the writer's poll
        return True

    def close(self) -> None:
        with self._lock:
            writer = self._writer
        if writer is not None:  # let this process's streams finish writing, boundedly
            writer.join(_CLOSE_WAIT)
        self._client.close()


class _RedisReader:
    """Follows one Redis stream with XREAD BLOCK from an id on."""

    def __init__(self, log_: RedisLog, stream_id: str, key: str, after: str, *, finished: bool) -> None:
        self._log = log_
        self._client = log_._client
        self._stream_id = stream_id
        self._key = key
        self._last = after
        self._finished = finished  # the stream had ended when this reader opened: never block
        self.ended = False

    def _xread(self, wait: float) -> list[Entry]:
        block = round(min(wait, _MAX_BLOCK) * 1000) if wait > 0 and not self._finished else None
        with _translated("reading events"):
            found = self._client.xread({self._key: self._last}, count=_READ_COUNT, block=block or None)
        if not found:
            return []
        entries = [(i.decode(), f[b"t"].decode(), f[b"d"].decode()) for i, f in found[0][1]]
        self._last = entries[-1][0]
        return entries

    def read(self, wait: float) -> list[Entry]:
        entries = self._xread(wait)
        if entries:
            self.ended = entries[-1][1] in ("done", "error")
            return entries
        key = self._key
        with _translated("reading a status"):
            status, alive = self._client.mget([key + ":status", key + ":alive"])
            if status == b"running" and alive is None:  # its producer died: end the log for everyone
                buried = self._client.eval(_BURY, 3, key + ":status", key + ":alive", key, dumps(_DEAD), self._log._ttl_ms)
                log.warning("resumable stream %s: its producer stopped sending heartbeats%s", self._stream_id, "" if buried else " (ended by another reader)")
                status = b"error"
        if status is None:
            raise unknown(self._stream_id)
        if status != b"running":  # the terminal event was added before the status: read once more
            self._finished = True
            entries = self._xread(0)
            self.ended = not entries or entries[-1][1] in ("done", "error")
        return entries
