"""A stand-in OpenAI-compatible chat-completions server, scripted by the test.

A script is a function from the parsed request to the reply: ``say(text)`` or
``call_tool(name, **arguments)``. Every request is recorded so a test can read what the bot sent
the model (its instructions, history and tool schema).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

Script = Callable[[dict[str, Any]], dict[str, Any]]


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


class StandInOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.scripts: dict[str, Script] = {}
        self.app = FastAPI()
        self.app.add_api_route("/{model_path:path}/chat/completions", self._complete, methods=["POST"])

    def script(self, model: str, script: Script) -> None:
        self.scripts[model] = script

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        return [request for request in self.requests if request.get("model") == model]

    async def _complete(self, model_path: str, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        script = self.scripts.get(body.get("model", ""))
        if script is None:
            return JSONResponse({"error": {"message": "no script for this model"}}, status_code=400)
        message = script(body)
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
