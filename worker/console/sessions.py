"""Sessions kept in Redis, so every replica knows them and sign-out ends one everywhere.

The cookie holds a random session id, signed; Redis holds what it stands for under the id's
digest (a dump of the keys shows no usable id). A session ends when unused for the idle
timeout or at its maximum age, whichever comes first, judged by the clock passed in; the key's
TTL only cleans up after it.
"""

import hashlib
import secrets
from collections.abc import Callable
from typing import Literal

from itsdangerous import BadSignature, Signer
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from worker.ops.actor import Role

Clock = Callable[[], float]


class Session(BaseModel, frozen=True):
    user: str
    role: Role
    how: Literal["password", "proxy"]
    csrf: str  # the token every state-changing request must carry
    created: float
    seen: float


class SessionStore:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        secret: str,
        idle_s: float,
        max_s: float,
        clock: Clock,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._signer = Signer(secret, salt="prospect-worker console session")
        self._idle_s = idle_s
        self._max_s = max_s
        self._clock = clock

    def _key(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return f"{self._prefix}:console:session:{digest}"

    def _unsign(self, cookie: str) -> str | None:
        try:
            return self._signer.unsign(cookie).decode()
        except BadSignature:
            return None

    async def create(self, user: str, role: Role, how: Literal["password", "proxy"]) -> str:
        """A new session; returns the cookie's value."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(
            user=user, role=role, how=how, csrf=secrets.token_urlsafe(32), created=now, seen=now
        )
        await self._save(session_id, session)
        return self._signer.sign(session_id).decode()

    async def load(self, cookie: str, *, touch: bool = True) -> Session | None:
        """The live session the cookie names, marked as used now unless `touch` is False (a
        page polling by itself is not a person using it); None when there is none."""
        session_id = self._unsign(cookie)
        if session_id is None:
            return None
        raw = await self._redis.get(self._key(session_id))
        if raw is None:
            return None
        try:
            session = Session.model_validate_json(raw)
        except ValidationError:
            return None
        now = self._clock()
        if now - session.seen > self._idle_s or now - session.created > self._max_s:
            await self._redis.delete(self._key(session_id))
            return None
        if touch:
            session = session.model_copy(update={"seen": now})
            await self._save(session_id, session)
        return session

    async def end(self, cookie: str) -> None:
        session_id = self._unsign(cookie)
        if session_id is not None:
            await self._redis.delete(self._key(session_id))

    async def _save(self, session_id: str, session: Session) -> None:
        ttl = max(1, int(min(self._idle_s, self._max_s - (session.seen - session.created))) + 1)
        await self._redis.set(self._key(session_id), session.model_dump_json(), ex=ttl)
