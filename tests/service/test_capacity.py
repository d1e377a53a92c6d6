"""The process's room for work: a request held for room takes the place of the next request
answered, the longest-held first, and gives up when its time is up."""

from __future__ import annotations

import asyncio

from service.capacity import Capacity


def test_a_place_passes_to_the_longest_held_request() -> None:
    async def scenario() -> None:
        capacity = Capacity(max_waiting_images=100, max_active_requests=1)
        capacity.enter()
        assert capacity.overloaded
        first = asyncio.create_task(capacity.wait_for_room(5.0))
        second = asyncio.create_task(capacity.wait_for_room(5.0))
        await asyncio.sleep(0)
        capacity.leave()  # handed over, not freed: no newcomer at the door gets in first
        assert await first is True
        assert capacity.requests == 1 and capacity.overloaded and not second.done()
        capacity.leave()
        assert await second is True
        capacity.leave()  # nobody waits: the place is freed
        assert capacity.requests == 0 and not capacity.overloaded

    asyncio.run(scenario())


def test_a_held_request_gives_up_when_its_time_is_up() -> None:
    async def scenario() -> None:
        capacity = Capacity(max_waiting_images=100, max_active_requests=1)
        capacity.enter()
        assert await capacity.wait_for_room(0.05) is False
        capacity.leave()  # the place it gave up on is freed, not handed to it
        assert capacity.requests == 0

    asyncio.run(scenario())


def test_no_place_is_handed_over_while_too_many_images_wait() -> None:
    async def scenario() -> None:
        capacity = Capacity(max_waiting_images=10, max_active_requests=2)
        capacity.enter()
        capacity.waiting = 10  # the images bound is reached
        held = asyncio.create_task(capacity.wait_for_room(0.2))
        await asyncio.sleep(0)
        capacity.leave()
        assert capacity.requests == 0
        assert await held is False
        # While no place is handed over, the requests that gave up do not pile up in line.
        for _ in range(100):
            assert await capacity.wait_for_room(0.001) is False
        assert len(capacity._turns) <= 1

    asyncio.run(scenario())


def test_a_place_handed_to_a_client_that_went_away_passes_on() -> None:
    async def scenario() -> None:
        capacity = Capacity(max_waiting_images=100, max_active_requests=1)
        capacity.enter()
        gone = asyncio.create_task(capacity.wait_for_room(5.0))
        await asyncio.sleep(0)
        capacity.leave()  # handed to it ...
        gone.cancel()  # ... as its task is cancelled, before it runs again
        await asyncio.gather(gone, return_exceptions=True)
        assert capacity.requests == 0

    asyncio.run(scenario())
