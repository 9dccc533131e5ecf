"""An attack from one client address does not lock out another (real Argon2 and store)."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from tests.integration.api.harness import Harness, open_api


async def attack_while_using_a_valid_token(
    attacker: httpx.AsyncClient, victim: httpx.AsyncClient, *, requests: int, tasks: int
) -> tuple[list[int], list[int]]:
    """Send ``requests`` bad tokens from ``attacker`` while ``victim`` keeps calling."""
    statuses: list[int] = []
    good: list[int] = []
    done = trio.Event()

    async def attack(count: int) -> None:
        for index in range(count):
            response = await attacker.get(
                "/api/instances", headers={"Authorization": f"Bearer bad-token-{index:04d}"}
            )
            statuses.append(response.status_code)

    async def keep_using_a_valid_token() -> None:
        while not done.is_set():
            good.append((await victim.get("/api/instances")).status_code)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_using_a_valid_token)
            async with trio.open_nursery() as attackers:
                for _ in range(tasks):
                    attackers.start_soon(attack, requests // tasks)
            done.set()
    return statuses, good


async def test_a_thousand_bad_tokens_from_one_client_while_another_keeps_working(
    tmp_path: Path,
) -> None:
    async with open_api(tmp_path) as api:
        async with (
            api.asgi_client("10.0.0.66") as attacker,
            api.asgi_client("10.0.0.7", api.admin_token) as victim,
        ):
            statuses, good = await attack_while_using_a_valid_token(
                attacker, victim, requests=1000, tasks=20
            )
        assert len(statuses) == 1000
        assert set(statuses) == {401, 429}
        # 10 failures per 5 s window; the attack is over well before 20 windows pass
        assert statuses.count(401) < 100
        assert good
        assert set(good) == {200}
        # the attacker's lock-out is its own: a valid token from it is refused too
        async with api.asgi_client("10.0.0.66", api.admin_token) as attacker_with_token:
            assert (await attacker_with_token.get("/api/instances")).status_code == 429


async def test_over_real_sockets_the_limit_is_per_address(api_harness: Harness) -> None:
    api = api_harness
    attacker_transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        httpx.AsyncClient(base_url=api.url, transport=attacker_transport) as attacker,
        api.admin() as victim,
    ):
        statuses, good = await attack_while_using_a_valid_token(
            attacker, victim, requests=100, tasks=10
        )
    assert statuses.count(401) >= 10
    assert statuses.count(429) >= 50
    assert set(good) == {200}
