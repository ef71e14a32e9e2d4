"""An OpenAI-compatible chat completions client (OpenAI, vLLM, Ollama, llama.cpp, LM Studio...).

Status codes and timeouts are classified by `send_json` like every other provider's. The API key
goes only into the Authorization header; no error message or repr ever carries it.
"""

from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict

from jobs.clients.gate import RateGate
from jobs.clients.http import send_json
from jobs.errors import PermanentError

SERVICE = "llm"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


# Response models ignore unknown fields: providers add their own (logprobs, system_fingerprint).
class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ChatUsage(_Loose):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class ChatAnswer(_Loose):
    role: str | None = None
    content: str | None = None


class ChatChoice(_Loose):
    index: int = 0
    message: ChatAnswer
    finish_reason: str | None = None


class ChatCompletion(_Loose):
    model: str | None = None
    choices: list[ChatChoice]
    usage: ChatUsage | None = None


class ChatClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout: float,
        gate: RateGate | None = None,
    ) -> None:
        self._http = http
        self._gate = gate
        root = base_url.rstrip("/")
        # Most providers document their base URL with the /v1 already on it; accept both.
        if not root.endswith("/v1"):
            root += "/v1"
        self._url = f"{root}/chat/completions"
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout)
        self.model = model

    def __repr__(self) -> str:
        return f"ChatClient(url={self._url!r}, model={self.model!r})"

    async def complete(
        self, messages: list[ChatMessage], *, temperature: float = 0.4, max_tokens: int = 400
    ) -> str:
        """The first choice's text. An answer with no text is the provider's failure, and asking
        again with the same prompt is not expected to help: PermanentError."""
        completion = await self.create(messages, temperature=temperature, max_tokens=max_tokens)
        if not completion.choices:
            raise PermanentError(f"{SERVICE}: answer has no choices")
        choice = completion.choices[0]
        content = choice.message.content
        if content is None or not content.strip():
            raise PermanentError(
                f"{SERVICE}: answer has no content (finish_reason={choice.finish_reason})"
            )
        return content

    async def complete_json(
        self, messages: list[ChatMessage], *, temperature: float = 0.0, max_tokens: int = 200
    ) -> str:
        """The first choice's text in JSON mode (`response_format: json_object`): the caller
        still validates it, since not every compatible server enforces the mode."""
        completion = await self.create(
            messages, temperature=temperature, max_tokens=max_tokens, json_mode=True
        )
        content = completion.choices[0].message.content if completion.choices else None
        if not content:
            raise PermanentError(f"{SERVICE}: answer has no content")
        return content

    async def create(
        self,
        messages: list[ChatMessage],
        *,
        temperature: float = 0.4,
        max_tokens: int = 400,
        json_mode: bool = False,
    ) -> ChatCompletion:
        """The whole validated answer, usage included."""
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        body: dict[str, object] = {
            "model": self.model,
            "messages": [message.model_dump() for message in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        request = self._http.build_request(
            "POST",
            self._url,
            json=body,
            headers=headers,
            timeout=self._timeout,
        )
        return await send_json(
            self._http, request, ChatCompletion, service=SERVICE, gate=self._gate
        )
