"""The paragraph quoted beside a model's answer comes only from a passage that holds the
question's topic; "the strongest passage" is the one holding most of it, so a model citing the
note that answers is not told it skipped a stronger one; and when no passage holds the topic,
the answer says plainly that the notes hold nothing on it instead of quoting something that
shares one word with the question."""

from __future__ import annotations

import json
from typing import Any

from localresearch.citations import Passage, align
from localresearch.evidence import NOTHING_FOUND, STRONGEST_UNCITED, evidence_for
from localresearch.paths import Paths
from tests.fakes.apps import notes_client
from tests.fakes.servers import FakeServer, Reply, llamacpp_models, llamacpp_props, openai_stream

ADMIN = (
    "# Router\n\nThe admin password was changed in March 2024 after the firmware update.\n"
    "The router's admin page is at 192.168.1.1.\n"
)
GUEST = (
    "# Guest network\n\nThe guest Wi-Fi is called Visitors and is isolated from the home LAN.\n"
    "The guest Wi-Fi password changes on the first day of every month.\n"
)
WAL = (
    "# SQLite WAL mode\n\nLong read transactions in WAL mode prevent checkpoints from "
    "completing.\nA checkpoint copies the WAL's pages back into the database file.\n"
)
GUEST_QUESTION = "How often does the guest Wi-Fi password change?"
BATTERY_QUESTION = "How long is the warranty on my car battery?"
# As the QA pass saw it: the search ranks the router note (password, changed) first.
RANKED = [
    Passage(1, "router.md", 1, 4, "", ADMIN, rank=0, heading="Router"),
    Passage(2, "guest-network.md", 1, 4, "", GUEST, rank=1, heading="Guest network"),
]


def _evidence(question: str, answer: str, passages: list[Passage], **options: Any) -> Any:
    return evidence_for(question, align(answer, passages).sentences, passages, **options)


def test_citing_the_passage_that_answers_is_citing_the_strongest() -> None:
    answer = "The guest Wi-Fi password changes on the first day of every month [2]."
    assert _evidence(GUEST_QUESTION, answer, RANKED) is None


def test_citing_a_weaker_passage_gets_the_one_that_answers_quoted() -> None:
    answer = "The admin password was changed in March 2024 [1]."
    evidence = _evidence(GUEST_QUESTION, answer, RANKED)
    assert evidence.reason == STRONGEST_UNCITED
    assert [(q.n, q.text) for q in evidence.quotes] == [
        (2, "The guest Wi-Fi password changes on the first day of every month.")
    ]


def test_a_passage_sharing_one_common_word_is_not_quoted() -> None:
    passages = [Passage(1, "sqlite.md", 1, 4, "", WAL, rank=0, heading="SQLite WAL mode")]
    answer = "Car batteries usually carry a three-year warranty."
    assert _evidence(BATTERY_QUESTION, answer, passages) is None
    evidence = _evidence(BATTERY_QUESTION, answer, passages, say_nothing_found=True)
    assert evidence.reason == NOTHING_FOUND and evidence.quotes == []
    assert evidence.paragraph() == (
        "I found nothing in your notes about “How long is the warranty on my car battery”."
    )
    assert evidence.to_dict() is None


CHAT = "/v1/chat/completions"
MODEL = "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"


async def test_an_answer_the_notes_hold_nothing_on_says_so(
    make_client: Any, paths: Paths, fake_server: FakeServer
) -> None:
    fake_server.queue("/v1/models", llamacpp_models(MODEL, n_ctx=4096))
    fake_server.queue("/props", llamacpp_props(MODEL, n_ctx=4096))
    made_up = "Car batteries usually carry a three-year warranty."
    fake_server.queue(CHAT, Reply(chunks=openai_stream([made_up])))
    text = f'[llm]\nprovider = "openai"\nbase_url = "{fake_server.url}/v1"\nmodel = "local"\n'
    notes = {"sqlite.md": WAL, "guest-network.md": GUEST}
    client = await notes_client(make_client, paths, notes, text)

    resp = await client.post("/api/chat/stream", json={"message": BATTERY_QUESTION})
    events = [
        json.loads(line[5:]) for line in (await resp.text()).splitlines() if line[:5] == "data:"
    ]
    done = events[-1]["data"]
    assert events[-1]["type"] == "done", events[-1]
    # The search found the WAL note (on "long"): the model saw it, but it is no answer.
    assert "Long read transactions" in fake_server.requests[-1].body["messages"][-1]["content"]
    statement = f"I found nothing in your notes about “{BATTERY_QUESTION[:-1]}”."
    assert done["response"] == f"{made_up}\n\n{statement}"
    assert "Quoted from your notes" not in done["response"] and done["citations"] == []
    model, said = done["sentences"]
    assert (model["supported"], model["quoted"]) == (False, False)
    assert said == {
        "text": statement,
        "citations": [],
        "supported": True,
        "claim": False,
        "score": 0.0,
        "quoted": True,
    }
    assert done["evidence"] is None
    streamed = "".join(e["data"]["text"] for e in events if e["type"] == "delta")
    assert streamed == done["response"]
