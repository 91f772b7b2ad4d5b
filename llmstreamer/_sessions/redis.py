"""``redis://``: sessions shared by every worker and machine (the ``redis`` extra).

Keys, under ``prefix``: ``{prefix}:session:{id}`` (a hash of JSON-encoded header fields),
``{prefix}:session:{id}:nodes`` (a list of messages, appended per turn),
``{prefix}:session:{id}:lease`` (the turn lease, with a TTL), ``{prefix}:sessions`` (a sorted set
by modification time), ``{prefix}:session-names`` (name to id) and
``{prefix}:session-label:{key}={value}`` (a set of ids per label, for filtered listings). Every
change that touches more than one key is one Lua script, so it is atomic on the server and a
client killed half-way leaves nothing half-written. (The label scripts build the label sets'
keys themselves: fine on one Redis server or a replica set, not on Redis Cluster.)
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import urlsplit

from ..errors import ConfigurationError, LLMStreamError, SessionBusyError
from ._base import Commit, SessionStore

if TYPE_CHECKING:
    from ._values import Session, SessionInfo

__all__ = ["RedisStore"]

_CREATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'id' end
if ARGV[2] ~= '' then
  if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then return 'name' end
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
end
for k, v in pairs(cjson.decode(ARGV[4])) do redis.call('HSET', KEYS[2], k, v) end
for i = 5, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
for i = 5, #KEYS do redis.call('SADD', KEYS[i], ARGV[1]) end
return 'ok'
"""

_UPDATE = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 'missing' end
if ARGV[3] == '1' then
  if ARGV[2] ~= '' then
    local owner = redis.call('HGET', KEYS[1], ARGV[2])
    if owner and owner ~= ARGV[1] then return 'name' end
  end
  local old = cjson.decode(redis.call('HGET', KEYS[2], 'name'))
  if old ~= cjson.null and redis.call('HGET', KEYS[1], old) == ARGV[1] then redis.call('HDEL', KEYS[1], old) end
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], ARGV[2], ARGV[1]) end
end
local fields = cjson.decode(ARGV[4])
if fields['labels'] then
  for k, v in pairs(cjson.decode(redis.call('HGET', KEYS[2], 'labels'))) do
    redis.call('SREM', ARGV[6] .. k .. '=' .. v, ARGV[1])
  end
  for k, v in pairs(cjson.decode(fields['labels'])) do redis.call('SADD', ARGV[6] .. k .. '=' .. v, ARGV[1]) end
end
for k, v in pairs(fields) do redis.call('HSET', KEYS[2], k, v) end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
return 'ok'
"""

_DELETE = """
local name = redis.call('HGET', KEYS[2], 'name')
if name then
  local old = cjson.decode(name)
  if old ~= cjson.null and redis.call('HGET', KEYS[1], old) == ARGV[1] then redis.call('HDEL', KEYS[1], old) end
end
local labels = redis.call('HGET', KEYS[2], 'labels')
if labels then
  for k, v in pairs(cjson.decode(labels)) do redis.call('SREM', ARGV[2] .. k .. '=' .. v, ARGV[1]) end
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
return 'ok'
"""

_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lease' end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'missing' end
for i = 5, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
for k, v in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[2], k, v) end
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
return 'ok'
"""

_LEASE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

_INFO_FIELDS = ("id", "name", "labels", "provider", "model", "created", "modified", "message_count", "tokens")


def _fields(values: Mapping[str, Any]) -> str:
    """Hash fields as one JSON object of JSON-encoded values (what the scripts HSET)."""
    return json.dumps({k: json.dumps(v) for k, v in values.items()})


class RedisStore(SessionStore):
    """Sessions in Redis at ``url``, under keys that start with ``prefix``."""

    def __init__(self, url: str, *, prefix: str = "llmstreamer") -> None:
        try:
            import redis
        except ImportError as exc:
            raise ConfigurationError('a redis:// session store needs the redis package: pip install "llmstreamer[redis]"') from exc
        self._redis = redis
        password = urlsplit(url).password
        self.url = url if not password else url.replace(f":{password}@", ":***@", 1)  # never show a password
        self.prefix = prefix
        try:
            self._client = redis.Redis.from_url(url)
        except ValueError as exc:
            raise ConfigurationError(f"not a Redis URL: {exc}") from exc
        sources = {"create": _CREATE, "update": _UPDATE, "delete": _DELETE, "commit": _COMMIT,
                   "lease": _LEASE, "renew": _RENEW, "release": _RELEASE}  # fmt: skip
        self._scripts = {name: self._client.register_script(src) for name, src in sources.items()}
        self._names = f"{prefix}:session-names"
        self._index = f"{prefix}:sessions"
        self._labels = f"{prefix}:session-label:"

    def _k(self, session_id: str, suffix: str = "") -> str:
        return f"{self.prefix}:session:{session_id}{suffix}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The one boundary where redis-py errors become llmstreamer errors."""
        try:
            yield
        except self._redis.RedisError as exc:
            raise LLMStreamError(f"session store {self.url}: {type(exc).__name__}: {exc}") from exc

    def _run(self, name: str, keys: list[str], args: list[Any]) -> str:
        with self._errors():
            result = self._scripts[name](keys=keys, args=args)
        return result.decode() if isinstance(result, bytes) else str(result)

    def close(self) -> None:
        self._client.close()

    # --- reading -----------------------------------------------------------------------------------

    def _find(self, key: str) -> Session | None:
        from ._values import Session, SessionMessage, is_session_id

        with self._errors():
            if is_session_id(key):
                session_id = key
            else:
                raw: Any = self._client.hget(self._names, key)
                if raw is None:
                    return None
                session_id = raw.decode()
            pipe = self._client.pipeline(transaction=True)  # one consistent snapshot of both keys
            pipe.hgetall(self._k(session_id))
            pipe.lrange(self._k(session_id, ":nodes"), 0, -1)
            header, bodies = pipe.execute()
        if not header:
            return None
        try:
            data = {k.decode(): json.loads(v) for k, v in header.items()}
            nodes = [SessionMessage.from_dict(json.loads(b)) for b in bodies]
            return Session.from_dict(data, nodes)
        except (ValueError, KeyError, TypeError) as exc:
            raise LLMStreamError(f"session {session_id} in {self.url} is corrupt: {exc}") from exc

    def _infos(self, ids: list[bytes]) -> list[SessionInfo]:
        from ._values import SessionInfo

        with self._errors():
            pipe = self._client.pipeline(transaction=False)
            for raw in ids:
                pipe.hmget(self._k(raw.decode()), *_INFO_FIELDS)
            rows = pipe.execute()
        return [SessionInfo(*(json.loads(v) for v in row)) for row in rows if row[0] is not None]

    def _list(self, labels: dict[str, str], offset: int, limit: int) -> tuple[list[SessionInfo], int]:
        with self._errors():
            if not labels:
                total = int(self._client.zcard(self._index))
                ids: Any = self._client.zrevrange(self._index, offset, offset + limit - 1) if limit else []
                return self._infos(ids), total
            members: list[Any] = list(self._client.sinter([f"{self._labels}{k}={v}" for k, v in labels.items()]))
            pipe = self._client.pipeline(transaction=False)
            for raw in members:
                pipe.zscore(self._index, raw)
            scored = [(score, raw) for raw, score in zip(members, pipe.execute()) if score is not None]
        scored.sort(reverse=True)  # newest first, ties as ZREVRANGE orders them
        return self._infos([raw for _, raw in scored[offset : offset + limit]]), len(scored)

    # --- writing -----------------------------------------------------------------------------------

    def _create(self, session: Session) -> None:
        info = session.info
        header = {**session.header(), "message_count": info.message_count, "tokens": info.tokens}
        nodes = [json.dumps(n.to_dict()) for n in session.nodes]
        keys = [self._names, self._k(session.id), self._k(session.id, ":nodes"), self._index]
        keys += [f"{self._labels}{k}={v}" for k, v in session.labels.items()]
        result = self._run("create", keys, [session.id, session.name or "", session.modified, _fields(header), *nodes])
        if result == "id":
            raise ConfigurationError(f"a session with id {session.id} exists")
        if result == "name":
            raise ConfigurationError(f"a session named {session.name!r} exists")

    def _update(self, session_id: str, changes: dict[str, Any], modified: float) -> None:
        renamed = "name" in changes
        fields = _fields({**changes, "modified": modified})
        keys = [self._names, self._k(session_id), self._index]
        args = [session_id, changes.get("name") or "", "1" if renamed else "0", fields, modified, self._labels]
        result = self._run("update", keys, args)
        if result == "missing":
            raise ConfigurationError(f"no session {session_id!r} in {self.url}")
        if result == "name":
            raise ConfigurationError(f"a session named {changes['name']!r} exists")

    def _delete(self, session_id: str) -> None:
        keys = [self._names, self._k(session_id), self._k(session_id, ":nodes"), self._k(session_id, ":lease"), self._index]
        self._run("delete", keys, [session_id, self._labels])

    def _try_lease(self, session_id: str, token: str, ttl: float) -> bool:
        return self._run("lease", [self._k(session_id, ":lease")], [token, max(1, int(ttl * 1000))]) == "1"

    def _renew_lease(self, session_id: str, token: str, ttl: float) -> bool:
        return self._run("renew", [self._k(session_id, ":lease")], [token, max(1, int(ttl * 1000))]) == "1"

    def _release_lease(self, session_id: str, token: str) -> None:
        self._run("release", [self._k(session_id, ":lease")], [token])

    def _commit(self, session_id: str, token: str, commit: Commit) -> None:
        values: dict[str, Any] = {
            "head": commit.head,
            "modified": commit.modified,
            "message_count": commit.message_count,
            "tokens": commit.tokens,
        }
        if commit.overhead is not None:
            values["overhead"] = commit.overhead
        keys = [self._k(session_id, ":lease"), self._k(session_id), self._k(session_id, ":nodes"), self._index]
        nodes = [json.dumps(n.to_dict()) for n in commit.nodes]
        result = self._run("commit", keys, [token, session_id, _fields(values), commit.modified, *nodes])
        if result == "lease":
            raise SessionBusyError(f"session {session_id}: the turn lost its lease; nothing was stored")
        if result == "missing":
            raise ConfigurationError(f"session {session_id} was deleted during the turn")
