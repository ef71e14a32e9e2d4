"""The dead-letter stream: jobs that ended without success, kept with their payload for a person.

Every entry is written by one Lua script that also keeps a marker per job id, so a job that
is dead-lettered twice (a worker died between the entry and arq's bookkeeping, and the job ran
again) leaves one entry. When arq itself decided the failure (expired, undeserializable, unknown
function, deliveries spent), the same script also finishes the job the way arq would: the
entry and the job's removal from the queue happen together or not at all.

An entry is bounded whatever the job: a payload is kept whole up to `PAYLOAD_BYTES`; beyond
that only its first bytes, its length and its sha256 are kept (and the entry cannot be
replayed: the job is not there to enqueue again); the error, the raw bytes, the job id and the
type name are cut to a few KB. The stream is capped near `max_entries` (XADD MAXLEN ~): the
oldest entries go first, and every write that drops some says how many in the log. `purge`
removes entries by age or by id.
"""

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from jobs.redisreply import reply
from worker.engine.arqjobs import (
    ABORT_SET,
    IN_PROGRESS_KEY_PREFIX,
    JOB_KEY_PREFIX,
    RESULT_KEY_PREFIX,
    RETRY_KEY_PREFIX,
    encode_job,
)
from worker.keys import WorkerKeys

log = logging.getLogger("worker.deadletter")

DeadLetterKind = Literal["failed", "poison", "expired"]
MARKER_TTL_S = 30 * 86_400
# Bytes (UTF-8) each part of an entry may take, so an entry stays under 64 KiB: a payload is
# kept whole up to PAYLOAD_BYTES, else its first PAYLOAD_HEAD_BYTES with length and digest.
PAYLOAD_BYTES = 56 * 1024
PAYLOAD_HEAD_BYTES = 2_000
ERROR_BYTES = 2_000
RAW_BYTES = 4_000
NAME_BYTES = 1_000  # the job id and the type name (arq's record can claim any)
DEFAULT_MAX_ENTRIES = 10_000

# KEYS: stream, marker, then (only when ARGV[1] == '1', arq's finishing) job key, retry key,
#       in-progress key, result key, queue, abort set
# ARGV: finish flag, marker ttl, job id, result bytes, result ttl ms, max entries, then
#       field/value pairs
# Returns {entry id, entries the cap dropped}.
_ADD = """
local existing = redis.call('GET', KEYS[2])
local dropped = 0
-- The marker outlives a purged entry: only a live entry counts as already written.
if existing and #redis.call('XRANGE', KEYS[1], existing, existing) == 0 then existing = false end
if not existing then
  local fields = {}
  for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
  local before = redis.call('XLEN', KEYS[1])
  existing = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', unpack(fields))
  dropped = before + 1 - redis.call('XLEN', KEYS[1])
  redis.call('SET', KEYS[2], existing, 'EX', ARGV[2])
end
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
  redis.call('ZREM', KEYS[8], ARGV[3])
  redis.call('ZREM', KEYS[7], ARGV[3])
  if ARGV[4] ~= '' then redis.call('SET', KEYS[6], ARGV[4], 'PX', ARGV[5]) end
end
return {existing, dropped}
"""

# KEYS: stream, marker, job key, result key, tries key, queue, replayed record
# ARGV: entry id, job id, job record, due score (ms), job expiry (ms), now (ms), by, record ttl s
_REPLAY = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  if redis.call('EXISTS', KEYS[7]) == 1 then return 'already_replayed' end
  return 'gone'
end
if redis.call('EXISTS', KEYS[3]) == 1 then return 'queued' end
redis.call('DEL', KEYS[4], KEYS[5], KEYS[2])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[5])
redis.call('ZADD', KEYS[6], ARGV[4], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[7], 'job_id', ARGV[2], 'at_ms', ARGV[6], 'by', ARGV[7])
redis.call('EXPIRE', KEYS[7], ARGV[8])
return 'replayed'
"""


# Newest first from ARGV[1] ('+', or '(' and an entry id), the entries whose fields equal every
# given value, at most ARGV[2] of them, looking at no more than ARGV[3] entries: a filter over a
# long stream costs a bounded time in Redis, and says where it stopped.
# KEYS: stream. ARGV: start, limit, window, then field/value pairs.
# Returns {matching entries, where to go on ('' at the stream's start), entries looked at}.
_SCAN = """
local start, limit, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local found, seen = {}, 0
while seen < window and #found < limit do
  local ask = math.min(500, window - seen)
  local batch = redis.call('XREVRANGE', KEYS[1], start, '-', 'COUNT', ask)
  for _, entry in ipairs(batch) do
    seen = seen + 1
    start = '(' .. entry[1]
    local fields, ok = entry[2], true
    for i = 4, #ARGV, 2 do
      local value = nil
      for j = 1, #fields, 2 do
        if fields[j] == ARGV[i] then value = fields[j + 1] break end
      end
      if value ~= ARGV[i + 1] then ok = false break end
    end
    if ok then
      found[#found + 1] = entry
      if #found >= limit then break end
    end
  end
  if #found < limit and #batch < ask then return {found, '', seen} end
end
return {found, start, seen}
"""


class DeadLetter(BaseModel):
    id: str  # the stream entry id
    job_id: str
    function: str
    kind: DeadLetterKind
    error_type: str
    error: str
    tries: int
    failed_ms: int
    payload: Any = None  # the job's JSON payload when it had one that decoded
    raw: str | None = None  # the stored bytes, when they did not decode (escaped, truncated)
    not_replayable: str | None = None  # the job's own word that a replay cannot help, and why
    # A payload over PAYLOAD_BYTES: its length, its sha256 and its first bytes, not the whole.
    payload_bytes: int | None = None
    payload_sha256: str | None = None
    payload_head: str | None = None

    @property
    def replayable(self) -> str | None:
        """None when replay can work; else why not."""
        if self.payload_bytes is not None:  # whatever else is true, there is nothing to send
            return (
                f"the payload was {self.payload_bytes:,} bytes, over the {PAYLOAD_BYTES:,} an "
                "entry keeps: only its start and sha256 are here; enqueue the job again instead"
            )
        if self.not_replayable is not None:
            return self.not_replayable
        if self.kind == "expired" and self.payload is None:
            return "the job's record had expired: nothing to replay"
        if self.raw is not None:
            return "the job's bytes did not decode: nothing to replay"
        if self.kind == "poison":
            return "a poison message fails the same way again: enqueue a corrected job instead"
        if self.payload is not None and not isinstance(self.payload, dict):
            return "the payload is not a JSON object"
        return None


# already_replayed: the entry left by an earlier replay (its record says when and by whom);
# gone: it left otherwise (purged, or dropped at the stream's cap).
ReplayOutcome = Literal["replayed", "queued", "gone", "already_replayed", "not_replayable"]


class Replayed(BaseModel):
    """What is kept of an entry that was replayed, for MARKER_TTL_S."""

    entry: str
    job_id: str
    at_ms: int
    by: str = ""


class DeadLetters:
    """The stream, its writes and the operator's workflow (list, show, replay, purge)."""

    def __init__(
        self,
        redis: Redis,
        keys: WorkerKeys,
        *,
        queue_name: str,
        job_expires_ms: int,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._redis = redis
        self._max_entries = max_entries
        self._keys = keys
        self._queue = queue_name
        self._job_expires_ms = job_expires_ms
        self._add = redis.register_script(_ADD)
        self._replay = redis.register_script(_REPLAY)
        self._scan = redis.register_script(_SCAN)

    async def add(
        self,
        *,
        job_id: str,
        function: str,
        kind: DeadLetterKind,
        error_type: str,
        error: str,
        tries: int,
        payload: Any = None,
        raw: bytes | None = None,
        finish_result: bytes | None = None,
        result_ttl_ms: int = 0,
        not_replayable: str | None = None,
    ) -> str:
        """Write the entry (once per job id) and return its id.

        `finish_result`: also finish the job as arq would, storing that result record."""
        fields: dict[str, str | int] = {
            "job_id": _cut(job_id, NAME_BYTES),
            "function": _cut(function, NAME_BYTES),
            "kind": kind,
            "error_type": _cut(error_type, NAME_BYTES),
            "error": _cut(error, ERROR_BYTES),
            "tries": tries,
            "failed_ms": int(time.time() * 1000),
        }
        if payload is not None:
            fields.update(_payload_fields(orjson.dumps(payload, default=str)))
        if raw is not None:
            fields["raw"] = _cut(raw[:RAW_BYTES].decode("utf-8", "backslashreplace"), RAW_BYTES)
        if not_replayable is not None:
            fields["not_replayable"] = not_replayable
        keys = [self._keys.dead_letters, self._keys.dead_letter_marker(job_id)]
        finish = finish_result is not None
        if finish:
            keys += [
                JOB_KEY_PREFIX + job_id,
                RETRY_KEY_PREFIX + job_id,
                IN_PROGRESS_KEY_PREFIX + job_id,
                RESULT_KEY_PREFIX + job_id,
                self._queue,
                ABORT_SET,
            ]
        args: list[str | int | bytes] = [
            "1" if finish else "0",
            MARKER_TTL_S,
            job_id,
            finish_result or b"",
            result_ttl_ms,
            self._max_entries,
        ]
        for name, value in fields.items():
            args += [name, value]
        entry, dropped = await self._add(keys=keys, args=args)
        if dropped:
            log.warning(
                "dead-letter stream at its cap of %d entries: the %d oldest dropped",
                self._max_entries,
                dropped,
            )
        return _text(entry)

    async def scan(
        self, *, start: str = "+", limit: int = 50, window: int = 10_000, **equal: str
    ) -> tuple[list[DeadLetter], str | None, int]:
        """Newest first from `start` (an entry id, exclusive; "+" for the newest), up to `limit`
        entries whose fields equal `equal` (`function=...`, `error_type=...`), looking at no more
        than `window` entries, in one step in Redis. Returns the entries, where to go on (None
        at the stream's start) and how many entries were looked at."""
        args: list[str | int] = [start if start == "+" else f"({start}", limit, window]
        for name, value in equal.items():
            args += [name, value]
        found, resume, seen = await self._scan(keys=[self._keys.dead_letters], args=args)
        letters = [_parse(entry_id, _pairs(fields)) for entry_id, fields in found]
        resume = _text(resume)
        return letters, resume.removeprefix("(") or None, int(seen)

    async def list(self, *, function: str | None = None, limit: int = 50) -> list[DeadLetter]:
        """The newest first, optionally of one job type."""
        entries: list[DeadLetter] = []
        last = "+"
        while len(entries) < limit:
            page = await self._redis.xrevrange(self._keys.dead_letters, last, "-", count=200)
            for entry_id, fields in page:
                letter = _parse(entry_id, fields)
                if function is None or letter.function == function:
                    entries.append(letter)
            if len(page) < 200:
                break
            last = "(" + _text(page[-1][0])
        return entries[:limit]

    async def show(self, entry_id: str) -> DeadLetter | None:
        page = await self._redis.xrange(self._keys.dead_letters, entry_id, entry_id)
        return _parse(*page[0]) if page else None

    async def replay(self, letter: DeadLetter, *, by: str = "") -> ReplayOutcome:
        """Enqueue the job again with fresh tries; the entry leaves the stream in the same step,
        which keeps a record of the replay (`replayed`) for a second one to find."""
        if letter.replayable is not None:
            return "not_replayable"
        now = int(time.time() * 1000)
        job_id = letter.job_id
        result = await self._replay(
            keys=[
                self._keys.dead_letters,
                self._keys.dead_letter_marker(job_id),
                JOB_KEY_PREFIX + job_id,
                RESULT_KEY_PREFIX + job_id,
                self._keys.tries(job_id),
                self._queue,
                self._keys.dead_letter_replayed(letter.id),
            ],
            args=[
                letter.id,
                job_id,
                encode_job(letter.function, letter.payload, now),
                now,
                self._job_expires_ms,
                now,
                by,
                MARKER_TTL_S,
            ],
        )
        outcome: ReplayOutcome = _text(result)  # type: ignore[assignment]
        return outcome

    async def replayed(self, entry_id: str) -> Replayed | None:
        """The record of an earlier replay of `entry_id`, while it is kept."""
        kept = await reply(self._redis.hgetall(self._keys.dead_letter_replayed(entry_id)))
        if not kept:
            return None
        fields = {_text(name): _text(value) for name, value in kept.items()}
        return Replayed(
            entry=entry_id,
            job_id=fields.get("job_id", "?"),
            at_ms=int(fields.get("at_ms", 0)),
            by=fields.get("by", ""),
        )

    async def purge(self, *, older_than_s: float | None = None, ids: Sequence[str] = ()) -> int:
        """Remove entries older than `older_than_s` (all when None), or exactly `ids`."""
        if ids:
            return int(await self._redis.xdel(self._keys.dead_letters, *ids))
        if older_than_s is None:
            removed = await self._redis.xlen(self._keys.dead_letters)
            await self._redis.delete(self._keys.dead_letters)
            return int(removed)
        # MINID keeps ids at or after it: one past the cutoff removes entries made at it too.
        cutoff_ms = int((time.time() - older_than_s) * 1000) + 1
        return int(await self._redis.xtrim(self._keys.dead_letters, minid=cutoff_ms))

    async def count(self) -> int:
        return int(await self._redis.xlen(self._keys.dead_letters))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    """A script's field/value list as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _payload_fields(data: bytes) -> dict[str, str | int]:
    """The payload whole when it fits an entry; else its start, its length and its digest."""
    if len(data) <= PAYLOAD_BYTES:
        return {"payload": data.decode()}
    return {
        "payload_head": data[:PAYLOAD_HEAD_BYTES].decode("utf-8", "ignore"),
        "payload_bytes": len(data),
        "payload_sha256": hashlib.sha256(data).hexdigest(),
    }


def _parse(entry_id: str | bytes, raw_fields: dict[Any, Any]) -> DeadLetter:
    fields = {_text(k): _text(v) for k, v in raw_fields.items()}
    payload = orjson.loads(fields["payload"]) if "payload" in fields else None
    return DeadLetter(
        id=_text(entry_id),
        job_id=fields.get("job_id", "?"),
        function=fields.get("function", "?"),
        kind=fields.get("kind", "failed"),
        error_type=fields.get("error_type", "?"),
        error=fields.get("error", ""),
        tries=int(fields.get("tries", 0)),
        failed_ms=int(fields.get("failed_ms", 0)),
        payload=payload,
        raw=fields.get("raw"),
        not_replayable=fields.get("not_replayable"),
        payload_bytes=int(fields["payload_bytes"]) if "payload_bytes" in fields else None,
        payload_sha256=fields.get("payload_sha256"),
        payload_head=fields.get("payload_head"),
    )
