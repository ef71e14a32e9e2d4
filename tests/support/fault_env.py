"""The settings fault tests shorten, named once: each test says how short, not which variables."""


def marker_env(ttl_s: float, renew_s: float) -> dict[str, str]:
    """An in-progress marker that lapses `ttl_s` after its worker stops renewing it (every
    `renew_s`): a killed or stalled worker's job runs again within seconds, not the default 20."""
    return {"PW_RECOVERY__IN_PROGRESS_TTL_S": str(ttl_s), "PW_RECOVERY__RENEW_S": str(renew_s)}


def retry_env(
    *, base_delay_s: float, max_delay_s: float | None = None, max_tries: int | None = None
) -> dict[str, str]:
    """Retries that come back within the test's patience; unset ones keep their default."""
    env = {"PW_RETRY__BASE_DELAY_S": str(base_delay_s)}
    if max_delay_s is not None:
        env["PW_RETRY__MAX_DELAY_S"] = str(max_delay_s)
    if max_tries is not None:
        env["PW_RETRY__MAX_TRIES"] = str(max_tries)
    return env
