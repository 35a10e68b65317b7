"""A loopback OpenAI-compatible server (``POST /v1/chat/completions``) for tests.

The real ``openai`` client reaches it through ``base_url``. Each request is kept (its JSON
body and Authorization header) and answered by the next scripted step, else by
:attr:`OpenAIEmulator.answer`: an answer with usage, a refusal (429 with a retry-after, 500),
or a hang that lasts until the test releases it (never a sleep). Retry delays are given in
milliseconds (``retry-after-ms``), which the client honours, so a retry costs no wall clock.

    async with OpenAIEmulator() as ai:
        ai.script(Refuse(429), Answer("Vraag om reviews met een QR-kaartje."))
        ... LanguageModel(ModelSettings(api_key="k", base_url=ai.base_url)) ...
        assert len(ai.requests) == 2
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Answer:
    """A completion; usage defaults to a count of the words in and out."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Refuse:
    """An error status, with a retry delay the client honours."""

    status: int
    retry_after_ms: int = 1


@dataclass(frozen=True)
class Hang:
    """No answer until :meth:`OpenAIEmulator.release` (then it answers ``then``)."""

    then: Answer = field(default_factory=lambda: Answer("Later toch een antwoord."))


Step = Answer | Refuse | Hang


class OpenAIEmulator:
    """The server; ``requests`` are the bodies received, in order."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.steps: deque[Step] = deque()
        self.answer = Answer("Vraag elke tevreden klant om een review, met een QR-kaartje "
                             "aan de kassa.")
        self.model = "emulated-model"
        self.received = asyncio.Event()  # set at every request
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def script(self, *steps: Step) -> None:
        """What the next requests get, in order; after them, :attr:`answer`."""
        self.steps.extend(steps)

    def release(self) -> None:
        """Let every hanging request (and later ones) answer."""
        self._released.set()

    async def __aenter__(self) -> OpenAIEmulator:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self.release()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.keys.append(request.headers.get("Authorization", ""))
        self.received.set()
        step = self.steps.popleft() if self.steps else self.answer
        if isinstance(step, Hang):
            await self._released.wait()
            step = step.then
        if isinstance(step, Refuse):
            return web.json_response(
                {"error": {"message": f"emulated {step.status}", "type": "emulated",
                           "code": None}}, status=step.status,
                headers={"retry-after-ms": str(step.retry_after_ms),
                         "retry-after": str(max(step.retry_after_ms // 1000, 1))})
        words_in = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        prompt = step.prompt_tokens if step.prompt_tokens is not None else words_in
        completion = (step.completion_tokens if step.completion_tokens is not None
                      else len(step.text.split()))
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": 1_790_000_000, "model": self.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": step.text}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}})

    def system_text(self, index: int = -1) -> str:
        """Everything in the system role of a request."""
        return "\n".join(m["content"] for m in self.requests[index]["messages"]
                         if m["role"] == "system")

    def dumped(self, index: int = -1) -> str:
        return json.dumps(self.requests[index], ensure_ascii=False)
