"""A stand-in OpenAI-compatible chat-completions server, scripted by the test.

A script is a function from the parsed request to the reply: ``say(text)`` or
``call_tool(name, **arguments)``. Every request is recorded so a test can read what the bot sent
the model (its instructions, history and tool schema). A request with ``"stream": true`` is answered
as OpenAI streams: server-sent ``chat.completion.chunk`` events (the text a few words at a time, a
tool call in one), a usage chunk, then ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

Script = Callable[[dict[str, Any]], Any]
"""Returns the assistant message (a dict), an awaitable of one, or a ready ``Response`` to send as is."""


def say(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def call_tool(name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{uuid.uuid4().hex[:10]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def last_message(request: dict[str, Any]) -> dict[str, Any]:
    return dict(request["messages"][-1])


def tool_then_say(name: str, reply: str, **arguments: Any) -> Script:
    """Call the tool for the user's message; once its result is in, say ``reply``."""

    def script(request: dict[str, Any]) -> dict[str, Any]:
        if last_message(request)["role"] == "tool":
            return say(reply)
        return call_tool(name, **arguments)

    return script


def held_until(gate: asyncio.Event, script: Script) -> Script:
    """The same script, but each answer waits until the test opens the gate (a slow model)."""

    async def held(request: dict[str, Any]) -> Any:
        await gate.wait()
        answer = script(request)
        return await answer if inspect.isawaitable(answer) else answer

    return held


def garbage(request: dict[str, Any]) -> Response:
    return Response(b"<html>502 upstream exploded", status_code=200, media_type="application/json")


class StandInOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.perf_counter() of each request, as ConnectorCall.at
        self.scripts: dict[str, Script] = {}
        self._arrived = asyncio.Condition()
        self.app = FastAPI()
        self.app.add_api_route("/{model_path:path}/chat/completions", self._complete, methods=["POST"])

    def script(self, model: str, script: Script) -> None:
        self.scripts[model] = script

    async def wait_for_requests(self, model: str, count: int, within: float = 30.0) -> None:
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests_for(model)) >= count)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        return [request for request in self.requests if request.get("model") == model]

    async def _complete(self, model_path: str, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.arrivals.append(time.perf_counter())
        async with self._arrived:
            self._arrived.notify_all()
        script = self.scripts.get(body.get("model", ""))
        if script is None:
            return JSONResponse({"error": {"message": "no script for this model"}}, status_code=400)
        message = script(body)
        if inspect.isawaitable(message):
            message = await message
        if isinstance(message, Response):
            return message
        if body.get("stream"):
            return StreamingResponse(_chunks(body.get("model"), message), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:10]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )


WORDS_PER_CHUNK = 3


async def _chunks(model: Any, message: dict[str, Any]) -> Any:
    envelope = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:10]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def event(choices: list[dict[str, Any]], **more: Any) -> bytes:
        return f"data: {json.dumps({**envelope, 'choices': choices, **more})}\n\n".encode()

    if message.get("tool_calls"):
        calls = [{"index": n, **call} for n, call in enumerate(message["tool_calls"])]
        yield event(
            [{"index": 0, "delta": {"role": "assistant", "tool_calls": calls}, "finish_reason": None}]
        )
        finish = "tool_calls"
    else:
        words = str(message.get("content") or "").split(" ")
        for start in range(0, len(words), WORDS_PER_CHUNK):
            piece = " ".join(words[start : start + WORDS_PER_CHUNK])
            piece = piece if start == 0 else " " + piece
            yield event(
                [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}]
            )
        finish = "stop"
    yield event([{"index": 0, "delta": {}, "finish_reason": finish}])
    yield event([], usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    yield b"data: [DONE]\n\n"
