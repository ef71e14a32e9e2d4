"""What the console's handlers are handed: built once at start by the app's lifespan."""

from dataclasses import dataclass

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from settings import ConsoleSettings
from worker.console.sessions import Clock, SessionStore
from worker.console.throttle import SigninThrottle
from worker.console.users import ConsoleUser
from worker.ops.context import Ops


@dataclass(frozen=True)
class Console:
    settings: ConsoleSettings
    ops: Ops
    users: dict[str, ConsoleUser]
    sessions: SessionStore
    throttle: SigninThrottle
    templates: Jinja2Templates
    secret: str  # signs the sign-in form's token
    clock: Clock


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console
