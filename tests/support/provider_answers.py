"""The answers a fake provider sends, in each provider's own shape.

Discovery and the email finder are answered by the bundled offline stand-ins
(`jobs.clients.standins.sample_transport`), so paging, the PDL 404 on no match and the Hunter
contacts are exactly what the offline default serves. The chat completion is written here from
the prompt, deterministically, in the "Subject: ...\\n\\nbody" form the draft writer parses.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from jobs.clients.standins import DISCOVERY_BASE_URL, EMAIL_FINDER_BASE_URL
from tests.support.faults import Endpoint


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(status: int, value: Any, *headers: tuple[str, str]) -> Answer:
    return Answer(status, json.dumps(value).encode(), headers)


def error_answer(endpoint: Endpoint, status: int, message: str) -> Answer:
    if endpoint == "email_finder":  # Hunter's error shape
        return json_answer(status, {"errors": [{"id": "fake", "code": status, "details": message}]})
    if endpoint == "llm":  # OpenAI's
        return json_answer(status, {"error": {"message": message, "type": "server_error"}})
    return json_answer(status, {"status": status, "error": {"type": "fake", "message": message}})


def truncated(answer: Answer) -> Answer:
    return Answer(200, answer.body[: max(1, len(answer.body) // 2)], answer.headers)


# What a proxy in front of the provider says on a bad day (the server labels every body JSON).
HTML_PAGE = Answer(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>")

# Valid JSON without the field each client requires (`data`, `data`, `choices`).
WRONG_SHAPE = json_answer(200, {"unexpected": "shape", "results": []})


def relay(transport: httpx.MockTransport, request: httpx.Request) -> Answer:
    response = transport.handle_request(request)
    response.read()
    return Answer(response.status_code, response.content)


def company_search(transport: httpx.MockTransport, body: bytes) -> Answer:
    url = f"{DISCOVERY_BASE_URL}/v5/company/search"
    headers = {"Content-Type": "application/json"}
    return relay(transport, httpx.Request("POST", url, content=body, headers=headers))


def domain_search(transport: httpx.MockTransport, params: dict[str, str]) -> Answer:
    url = f"{EMAIL_FINDER_BASE_URL}/v2/domain-search"
    return relay(transport, httpx.Request("GET", url, params=params))


_COMPANY = re.compile(r"^Prospect company: (?P<name>.*) \((?P<domain>[^()]*)\)$", re.MULTILINE)
_RECIPIENT = re.compile(r"^Recipient first name: (?P<name>[^\s(]+)$", re.MULTILINE)


def prompt_text(request: Any) -> str:
    """The user messages of a chat request, joined ("" when there are none)."""
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list):
        return ""
    return "\n".join(
        str(m.get("content", ""))
        for m in messages
        if isinstance(m, dict) and m.get("role") == "user"
    )


def prompt_subject(text: str) -> str:
    """The company a prompt is about: its domain, the key calls are counted by."""
    found = _COMPANY.search(text)
    return found.group("domain") if found else "unknown"


def chat_completion(request: Any) -> Answer:
    text = prompt_text(request)
    company = _COMPANY.search(text)
    recipient = _RECIPIENT.search(text)
    name = company.group("name") if company else "your team"
    greeting = recipient.group("name") if recipient else "there"
    content = (
        f"Subject: A quick idea for {name}\n\n"
        f"Hi {greeting},\n\n"
        f"I read about {name} and thought our work might help your team. "
        "Would a short call next week be useful?\n\nBest,\nAlex"
    )
    model = request.get("model") if isinstance(request, dict) else None
    return json_answer(
        200,
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": model or "fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 40},
        },
    )
