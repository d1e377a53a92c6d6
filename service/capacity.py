"""The process's room for work, shared by every model version it serves: images admitted and
not yet answered, requests let in and not yet answered, and the Retry-After every overload
refusal carries. One Python process answers with one event loop and one pair of CPUs, so the
limits are the process's, not a model's."""

from __future__ import annotations

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

    @property
    def overloaded(self) -> bool:
        """No request of even one image would be admitted now (`service.admission` refuses
        it at the door)."""
        return self.waiting >= self.max_waiting or self.requests >= self.max_requests

    def check(self, images: int) -> None:
        """Refuse with OverloadedError when `images` more would exceed MAX_WAITING_IMAGES. A
        request is always admitted when nothing waits, however many images it carries."""
        if self.waiting and self.waiting + images > self.max_waiting:
            raise OverloadedError(
                f"{self.waiting} images are already waiting for the model; retry after the "
                "seconds Retry-After says",
                self.retry_advice.refused(),
            )
