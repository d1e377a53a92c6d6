"""The process's room for work, shared by every model version it serves: images admitted and
not yet answered, requests let in and not yet answered, and the Retry-After every overload
refusal carries. One Python process answers with one event loop and one pair of CPUs, so the
limits are the process's, not a model's."""

from __future__ import annotations

import asyncio
from collections import deque

from service.backoff import RetryAdvice
from service.errors import RequestError


class OverloadedError(RequestError):
    """More images are waiting than the model clears in about a second, or more requests
    are in progress than the event loop answers at its fastest: refused at once, so the
    client can retry elsewhere, instead of queued for seconds. Retry-After says how long to
    wait (`service.backoff`)."""

    status_code = 503
    code = "overloaded"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class Capacity:
    """MAX_WAITING_IMAGES and MAX_ACTIVE_REQUESTS, counted."""

    def __init__(self, max_waiting_images: int, max_active_requests: int) -> None:
        self.max_waiting = max_waiting_images
        self.max_requests = min(max_active_requests, max_waiting_images)
        self.retry_advice = RetryAdvice()  # every overload refusal's Retry-After
        self.waiting = 0  # images admitted and not yet answered
        # HTTP requests let in by `service.admission` and not yet answered: each will be at
        # least one image, counted from the moment it is let in, before its body is read.
        self.requests = 0
        self._turns: deque[asyncio.Future[bool]] = deque()  # held requests, oldest first

    @property
    def overloaded(self) -> bool:
        """No request of even one image would be admitted now (`service.admission` refuses
        it at the door)."""
        return self.waiting >= self.max_waiting or self.requests >= self.max_requests

    def enter(self) -> None:
        """A request is let in (the door found room)."""
        self.requests += 1

    def leave(self) -> None:
        """A request let in is answered. Its place passes straight to the longest-held request
        waiting for room (`wait_for_room`), if the images waiting leave room for one more;
        handed over, not freed, so that no newcomer at the door takes it first."""
        self.retry_advice.answered()
        while self._turns and self.waiting < self.max_waiting:
            turn = self._turns.popleft()
            if not turn.done():  # done: its hold ran out, or its client went away
                turn.set_result(True)
                return
        self.requests -= 1

    async def wait_for_room(self, timeout_s: float) -> bool:
        """Hold a request that found no room, up to `timeout_s`, in line for the place of the
        next request answered: True once it has that place (counted in `requests`, to be
        given back with `leave`), False when the time is up without one."""
        while self._turns and self._turns[0].done():  # gave up (no `leave` came to pop them)
            self._turns.popleft()
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()
        self._turns.append(turn)
        timer = loop.call_later(timeout_s, lambda: turn.done() or turn.set_result(False))
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result():
                self.leave()  # handed a place as its client went away: pass it on
            raise
        finally:
            timer.cancel()

    def check(self, images: int) -> None:
        """Refuse with OverloadedError when `images` more would exceed MAX_WAITING_IMAGES. A
        request is always admitted when nothing waits, however many images it carries."""
        if self.waiting and self.waiting + images > self.max_waiting:
            raise OverloadedError(
                f"{self.waiting} images are already waiting for the model; retry after the "
                "seconds Retry-After says",
                self.retry_advice.refused(),
            )
