"""The language model that answers shopkeepers' questions, through the ``openai`` package.

Any OpenAI-compatible server works (``base_url``: Ollama, vLLM, …). The client's defaults
(600 s, 2 retries) are far too long for a chat: one call, retries included, ends within
``timeout_seconds`` (at most 20), and whatever goes wrong is one
:class:`ModelUnavailableError`, after which the answer comes from the tip library.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # openai takes about a second to import: only a bot that asks loads it
    import openai
    from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger(__name__)

#: The longest a shopkeeper waits for the model, retries included (seconds).
LONGEST_WAIT = 20.0
#: Retries of a failed call (a 429 or a 5xx); more would only make the person wait.
MOST_RETRIES = 1


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """``[llm]`` in config.toml; the key comes from ``OPENAI_API_KEY`` only.

    Without a key no model is called: every question is answered from the tip library.
    """

    api_key: str | None = field(default=None, repr=False)  # secret: kept out of repr
    base_url: str = ""  # empty: OpenAI itself
    model: str = "gpt-4o-mini"
    timeout_seconds: float = LONGEST_WAIT
    max_retries: int = MOST_RETRIES
    #: The most tokens one answer may take (the answer is short: about 700 characters).
    max_answer_tokens: int = 400
    #: Questions one person may ask per day (Brussels time); more are answered from tips.
    daily_questions: int = 20
    #: Tokens the whole bot may spend per calendar month; after that, answers from tips.
    monthly_tokens: int = 2_000_000

    def __post_init__(self) -> None:
        if not 0 < self.timeout_seconds <= LONGEST_WAIT:
            raise ValueError(f"timeout_seconds must be above 0 and at most {LONGEST_WAIT:g}")
        if not 0 <= self.max_retries <= MOST_RETRIES:
            raise ValueError(f"max_retries must be 0 or {MOST_RETRIES}")
        if self.daily_questions < 0 or self.monthly_tokens < 0 or self.max_answer_tokens < 1:
            raise ValueError("quota, budget and answer tokens must not be negative")


class ModelUnavailableError(Exception):
    """No answer from the model: not configured, refused, failed, too slow or empty."""


@dataclass(frozen=True, slots=True)
class Completion:
    """The model's answer and what it cost."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int


class LanguageModel:
    """Asks the configured model for one chat completion (:meth:`complete`)."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self._client: openai.AsyncOpenAI | None = None
        if settings.api_key:
            import openai  # lazily: see the import at the top

            self._client = openai.AsyncOpenAI(
                api_key=settings.api_key, base_url=settings.base_url or None,
                timeout=settings.timeout_seconds, max_retries=settings.max_retries)

    @property
    def configured(self) -> bool:
        """Whether there is a model to ask (an API key is set)."""
        return self._client is not None

    async def complete(self, messages: Sequence[ChatCompletionMessageParam]) -> Completion:
        """The model's answer to ``messages``; raises :class:`ModelUnavailableError`."""
        if self._client is None:
            raise ModelUnavailableError("no OPENAI_API_KEY")
        import openai  # lazily, as the client was

        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                response = await self._client.chat.completions.create(
                    model=self.settings.model, messages=list(messages),
                    max_tokens=self.settings.max_answer_tokens, temperature=0.3)
        except (openai.OpenAIError, TimeoutError) as exc:
            log.warning("the language model did not answer: %r", exc)
            raise ModelUnavailableError(repr(exc)) from exc
        text = response.choices[0].message.content if response.choices else None
        if not text or not text.strip():
            raise ModelUnavailableError("an empty answer")
        usage = response.usage
        return Completion(text.strip(), response.model or self.settings.model,
                          usage.prompt_tokens if usage else 0,
                          usage.completion_tokens if usage else 0)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
