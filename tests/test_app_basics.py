async def test_health(make_client):
    client = await make_client()
    r = await client.get("/health")
    assert r.status == 200
    assert await r.json() == {"status": "ok"}
