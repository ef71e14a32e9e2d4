"""A worker started after today's daily tick, with catch-up on, as a catch-up test needs."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.processes import env_for


def missed_tick_env(redis_url: str, daily_limit: int) -> tuple[datetime, dict[str, str]]:
    """Today's tick, a minute ago (whole minute, UTC), and a worker environment that set it with
    catch-up on. Skips in the minute after midnight, when today's tick cannot be in the past."""
    now = datetime.now(UTC)
    tick = (now - timedelta(minutes=1)).replace(second=0, microsecond=0)
    if tick.date() != now.date():
        pytest.skip("the minute after midnight: today's tick cannot be in the past")
    env = env_for(
        redis_url,
        PW_TIMEZONE="UTC",
        PW_DAILY_RUN_AT=tick.time().isoformat(),
        PW_DAILY_CATCH_UP="true",
        PW_DAILY_LIMIT=str(daily_limit),
    )
    return tick, env
