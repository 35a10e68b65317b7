"""The Graph API emulator refuses what the Cloud API refuses (else the bot's tests prove
nothing), through the bot's own client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from graph_emulator import GraphEmulator

from bot.whatsapp.graph import Graph, GraphError

TO = "32470999999"


@pytest.fixture
async def graph() -> AsyncIterator[GraphEmulator]:
    async with GraphEmulator() as emulator:
        emulator.last_inbound[TO] = emulator.now()  # they just wrote: the window is open
        yield emulator


@pytest.fixture
async def client(graph: GraphEmulator) -> AsyncIterator[Graph]:
    client = Graph(graph.base_url, graph.phone_number_id, graph.token)
    yield client
    await client.close()


def buttons(*titles: str) -> dict[str, Any]:
    return {"type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Vraag"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": f"r|{n}", "title": title}}
                               for n, title in enumerate(titles)]}}}


def rows(count: int, title: str = "Keuze", description: str = "") -> dict[str, Any]:
    return {"type": "interactive", "interactive": {
        "type": "list", "body": {"text": "Vraag"},
        "action": {"button": "Kies", "sections": [{"rows": [
            {"id": f"r|{n}", "title": f"{title} {n}"[:40],
             **({"description": description} if description else {})}
            for n in range(count)]}]}}}


async def refused(client: Graph, body: dict[str, Any]) -> int:
    with pytest.raises(GraphError) as caught:
        await client.send(TO, body)
    return caught.value.code


async def test_what_whatsapp_accepts_gets_a_wamid(client: Graph, graph: GraphEmulator) -> None:
    wamid = await client.send(TO, buttons("Ja", "Nee", "Misschien"))
    assert wamid.startswith("wamid.") and graph.sent[0].wamid == wamid
    assert await client.send(TO, rows(10, description="x" * 72))
    assert await client.send(TO, {"type": "text", "text": {"body": "x" * 4096}})


async def test_interactive_limits_are_enforced(client: Graph, graph: GraphEmulator) -> None:
    assert await refused(client, buttons("1", "2", "3", "4")) == 100
    assert await refused(client, buttons("Een titel van 21 tekens"[:21])) == 100
    assert await refused(client, buttons("Ja", "Ja")) == 100
    assert await refused(client, rows(11)) == 100
    assert await refused(client, rows(1, title="Een rijtitel van meer dan 24")) == 100
    assert await refused(client, rows(1, description="x" * 73)) == 100
    assert await refused(client, {"type": "text", "text": {"body": "x" * 4097}}) == 100
    assert graph.sent == []


async def test_outside_the_window_only_templates_go(client: Graph,
                                                    graph: GraphEmulator) -> None:
    graph.advance(24 * 3600 + 1)
    assert await refused(client, {"type": "text", "text": {"body": "hallo"}}) == 131047
    template = {"type": "template", "template": {
        "name": "kiss_tip", "language": {"code": "nl"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Tip"}]}]}}
    assert await client.send(TO, template)
    for bad in ("Tip\nmet regel", "Tip\tmet tab", "Tip     met spaties"):
        template["template"]["components"][0]["parameters"][0]["text"] = bad
        assert await refused(client, template) == 132018
    template["template"]["name"] = "unknown"
    assert await refused(client, template) == 132001


async def test_a_wrong_token_is_refused_and_uploads_give_media_ids(
        graph: GraphEmulator, client: Graph) -> None:
    intruder = Graph(graph.base_url, graph.phone_number_id, "stolen")
    try:
        with pytest.raises(GraphError) as caught:
            await intruder.send(TO, {"type": "text", "text": {"body": "hallo"}})
    finally:
        await intruder.close()
    assert (caught.value.status, caught.value.code) == (401, 190)
    media_id = await client.upload(b"\x89PNG...", "image/png", "radar.png")
    assert graph.media[media_id] == (b"\x89PNG...", "image/png", "radar.png")
    assert await client.send(TO, {"type": "image", "image": {"id": media_id}})
    assert await refused(client, {"type": "image", "image": {"id": "404"}}) == 131053


async def test_faults_can_be_injected(client: Graph, graph: GraphEmulator) -> None:
    graph.fail_next(130429)
    graph.fail_next(502)
    assert await refused(client, {"type": "text", "text": {"body": "a"}}) == 130429
    with pytest.raises(GraphError) as caught:
        await client.send(TO, {"type": "text", "text": {"body": "b"}})
    assert caught.value.status == 502
    assert await client.send(TO, {"type": "text", "text": {"body": "c"}})
    assert all(e["injected"] for e in graph.errors)


async def test_media_is_downloaded_with_the_token_and_a_received_id_is_not_sent(
        client: Graph, graph: GraphEmulator) -> None:
    media_id = graph.receive_file(b"\xff\xd8\xff photo")  # what a user's image carries
    assert await client.download(media_id) == b"\xff\xd8\xff photo"
    assert graph.downloads == [media_id]
    # Sending it needs an upload first: the id in a webhook is for downloading.
    assert await refused(client, {"type": "image", "image": {"id": media_id}}) == 131053
    # The URL serves only the same token, for five minutes.
    async with aiohttp.ClientSession() as session:
        info = await session.get(f"{graph.base_url}/{media_id}",
                                 headers={"Authorization": f"Bearer {graph.token}"})
        url = (await info.json())["url"]
        assert (await session.get(url)).status == 401
        graph.advance(301)
        answer = await session.get(url, headers={"Authorization": f"Bearer {graph.token}"})
        assert answer.status == 404
    # A received id lasts seven days, an uploaded one thirty.
    uploaded = await client.upload(b"\x89PNG...", "image/png", "affiche.png")
    graph.advance(7 * 24 * 3600)
    with pytest.raises(GraphError) as caught:
        await client.download(media_id)
    assert caught.value.code == 100
    assert await client.download(uploaded) == b"\x89PNG..."
