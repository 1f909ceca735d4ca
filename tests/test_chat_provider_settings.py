"""A change to the llm settings while the daemon runs (`research config set llm.base_url …`,
"Applied by the running daemon") is used by the next answer: the chat service makes a new
provider instead of reusing the one it made for the old settings. Two loopback servers speak
OpenAI's wire format; the change goes through the daemon's own config route."""

from __future__ import annotations

from typing import Any

from localresearch.config import load_config
from localresearch.paths import Paths
from localresearch.server.keys import RUNTIME
from tests.fakes.servers import FakeServer, Reply, openai_models, openai_stream

CHAT = "/v1/chat/completions"


async def test_a_changed_base_url_and_model_are_used_by_the_next_answer(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    other = FakeServer()
    await other.start()
    try:
        for server, name in ((fake_server, "first"), (other, "second")):
            server.queue("/v1/models", openai_models(["first", "second"]))
            server.queue(CHAT, Reply(chunks=openai_stream([f"Answered by the {name} server."])))
        paths.config_file.write_text(
            f'[llm]\nprovider = "openai"\nbase_url = "{fake_server.url}/v1"\nmodel = "first"\n'
            "context_tokens = 4096\n",
            encoding="utf-8",
        )
        client = await make_client(load_config(paths.config_file))
        runtime = client.server.app[RUNTIME]

        async def ask() -> dict[str, Any]:
            resp = await client.post(
                "/api/chat", json={"message": "hello", "include_memory": False}
            )
            assert resp.status == 200, await resp.text()
            done: dict[str, Any] = await resp.json()
            return done

        first = await ask()
        assert first["response"] == "Answered by the first server." and first["model"] == (
            "openai/first"
        )
        old = runtime.chat.provider()

        changed = await client.put(
            "/config", json={"llm": {"base_url": f"{other.url}/v1", "model": "second"}}
        )
        assert changed.status == 200, await changed.text()
        assert (await changed.json())["restart_required"] == []

        second = await ask()
        assert second["response"] == "Answered by the second server."
        assert second["model"] == "openai/second"
        assert [r.path for r in other.requests if r.path == CHAT] == [CHAT]
        assert other.requests[-1].body["model"] == "second"
        assert [r.path for r in fake_server.requests].count(CHAT) == 1  # not asked again
        assert runtime.chat.provider() is not old

        # A change to another section keeps the provider (and its pooled connection).
        kept = runtime.chat.provider()
        changed = await client.put("/config", json={"api": {"webhook_timeout": 11}})
        assert changed.status == 200, await changed.text()
        assert runtime.chat.provider() is kept
    finally:
        await other.close()
