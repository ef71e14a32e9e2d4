"""ChatClient on httpx.MockTransport: request shape, answer parsing, and error classes."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from jobs.clients.llm import ChatClient, ChatMessage
from jobs.errors import PermanentError, RateLimited, TransientError, UnreadableResponse

Handler = Callable[[httpx.Request], httpx.Response]
MakeClient = Callable[[Handler], "tuple[httpx.AsyncClient, Recorder]"]
KEY = "sk-test-secret-123"
MESSAGES = [
    ChatMessage(role="system", content="You write emails."),
    ChatMessage(role="user", content="Write one."),
]


def completion(
    content: str | None = "Subject: Hi\n\nHello there.", **extra: object
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
        **extra,
    }


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


@pytest.fixture
async def http() -> AsyncIterator[MakeClient]:
    """Makes clients on a mock transport that records what it saw; closes them afterwards."""
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler) -> tuple[httpx.AsyncClient, Recorder]:
        recorder = Recorder(handler)
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(recorder)))
        return clients[-1], recorder

    yield make
    for client in clients:
        await client.aclose()


def chat(
    client: httpx.AsyncClient, *, key: str | None = KEY, base_url: str = "https://llm.test"
) -> ChatClient:
    return ChatClient(client, base_url=base_url, api_key=key, model="gpt-4o-mini", timeout=12.5)


async def test_request_shape(http: MakeClient) -> None:
    client, seen = http(lambda request: httpx.Response(200, json=completion()))

    answer = await chat(client).complete(MESSAGES, temperature=0.2, max_tokens=300)

    assert answer == "Subject: Hi\n\nHello there."
    (request,) = seen.requests
    assert request.method == "POST"
    assert str(request.url) == "https://llm.test/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.extensions["timeout"]["read"] == 12.5
    assert orjson.loads(request.content) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You write emails."},
            {"role": "user", "content": "Write one."},
        ],
        "temperature": 0.2,
        "max_tokens": 300,
    }


async def test_defaults_and_no_auth_header_without_a_key(http: MakeClient) -> None:
    client, seen = http(lambda request: httpx.Response(200, json=completion()))

    await chat(client, key=None, base_url="http://127.0.0.1:11434/v1/").complete(MESSAGES)

    (request,) = seen.requests
    # A base URL that already ends in /v1 (as most providers document it) is not doubled.
    assert str(request.url) == "http://127.0.0.1:11434/v1/chat/completions"
    assert "Authorization" not in request.headers
    body = orjson.loads(request.content)
    assert (body["temperature"], body["max_tokens"]) == (0.4, 400)


async def test_usage_is_optional_and_read_when_present(http: MakeClient) -> None:
    without_usage = completion()
    del without_usage["usage"]
    client, _ = http(lambda request: httpx.Response(200, json=without_usage))
    assert (await chat(client).create(MESSAGES)).usage is None

    client, _ = http(lambda request: httpx.Response(200, json=completion()))
    usage = (await chat(client).create(MESSAGES)).usage
    assert usage is not None and usage.total_tokens == 27


async def test_429_with_retry_after_is_rate_limited(http: MakeClient) -> None:
    client, _ = http(
        lambda request: httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {}})
    )
    with pytest.raises(RateLimited) as caught:
        await chat(client).complete(MESSAGES)
    assert caught.value.retry_after == 7.0
    assert str(caught.value) == "llm: HTTP 429 from POST /v1/chat/completions"


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, TransientError), (503, TransientError), (400, PermanentError), (401, PermanentError)],
)
async def test_status_classes(http: MakeClient, status: int, error: type[Exception]) -> None:
    client, _ = http(lambda request: httpx.Response(status, json={"error": {"message": "no"}}))
    with pytest.raises(error) as caught:
        await chat(client).complete(MESSAGES)
    assert type(caught.value) is error  # a 500 is not mistaken for a rate limit
    assert KEY not in str(caught.value)


async def test_a_timeout_is_transient(http: MakeClient) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = http(slow)
    with pytest.raises(TransientError, match="llm: timed out"):
        await chat(client).complete(MESSAGES)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (orjson.dumps({"object": "chat.completion"}), "llm: malformed response (choices"),
        (orjson.dumps({"choices": [{"message": "hi"}]}), "llm: malformed response"),
        (orjson.dumps({"choices": []}), "llm: answer has no choices"),
        (orjson.dumps(completion(content=None)), "llm: answer has no content"),
        (orjson.dumps(completion(content="  \n ")), "llm: answer has no content"),
    ],
)
async def test_unusable_answers_are_permanent(http: MakeClient, body: bytes, says: str) -> None:
    client, _ = http(lambda request: httpx.Response(200, content=body))
    with pytest.raises(PermanentError) as caught:
        await chat(client).complete(MESSAGES)
    assert str(caught.value).startswith(says)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    "body", [b"<html>gateway says hi</html>", orjson.dumps(completion())[:40], b""]
)
async def test_a_body_that_is_not_json_is_transient(http: MakeClient, body: bytes) -> None:
    client, _ = http(lambda request: httpx.Response(200, content=body))
    with pytest.raises(UnreadableResponse, match=r"^llm: unreadable response") as caught:
        await chat(client).complete(MESSAGES)
    assert isinstance(caught.value, TransientError)
    assert KEY not in str(caught.value)


async def test_the_key_is_not_in_the_repr(http: MakeClient) -> None:
    client, _ = http(lambda request: httpx.Response(200, json=completion()))
    shown = repr(chat(client))
    assert KEY not in shown
    assert "https://llm.test/v1/chat/completions" in shown
