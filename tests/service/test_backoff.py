"""The Retry-After advice: refused clients are told to wait their turn, the clients refused
before them over the requests answered per second, within 1 and LONGEST_S seconds; a
connection that comes back sooner than it was told is held the rest, at most hold_s."""

from __future__ import annotations

from service.backoff import LONGEST_S, EarlyReturns, RetryAdvice


class Clock:
    """Seconds that the test moves on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answered(advice: RetryAdvice, count: int) -> None:
    for _ in range(count):
        advice.answered()


def test_a_lone_refusal_waits_one_second() -> None:
    clock = Clock()
    advice = RetryAdvice(clock)
    answered(advice, 100)
    clock.now += 1
    assert advice.refused() == 1
    assert advice.seconds == 1


def test_a_crowd_is_spread_over_the_seconds_it_takes_to_answer() -> None:
    clock = Clock()
    advice = RetryAdvice(clock)
    answered(advice, 100)  # 100 requests a second
    clock.now += 1
    advised = [advice.refused() for _ in range(1000)]
    assert advised[:100] == [1] * 100  # the first hundred fit in the next second
    assert advised[100] == 2
    assert advised[-1] == 10  # the thousandth waits for 999 before it: ten seconds


def test_the_advice_follows_the_rate_answered_the_second_before() -> None:
    clock = Clock()
    advice = RetryAdvice(clock)
    answered(advice, 400)
    clock.now += 1
    assert [advice.refused() for _ in range(1000)][-1] == 3
    answered(advice, 50)  # the service slowed down
    clock.now += 1
    assert advice.refused() == 21  # the 1,001 refused in the last three seconds, 50 a second


def test_the_advice_is_never_longer_than_longest() -> None:
    clock = Clock()
    advice = RetryAdvice(clock)
    assert [advice.refused() for _ in range(10 * LONGEST_S)][-1] == LONGEST_S  # none answered


def test_refusals_are_forgotten_once_their_clients_are_due_back() -> None:
    clock = Clock()
    advice = RetryAdvice(clock)
    answered(advice, 10)
    clock.now += 1
    assert [advice.refused() for _ in range(50)][-1] == 5
    clock.now += 6
    answered(advice, 10)
    clock.now += 1
    assert advice.refused() == 1


def test_a_connection_back_before_its_time_is_held_the_rest() -> None:
    clock = Clock()
    early = EarlyReturns(hold_s=1.5, clock=clock)
    assert early.hold(("10.0.0.1", 4000)) == 0  # never refused: answered at once
    early.told(("10.0.0.1", 4000), 1)
    assert early.hold(("10.0.0.1", 4000)) == 1.0  # back at once: held the second it was told
    assert early.hold(("10.0.0.2", 4000)) == 0  # another connection is not
    clock.now += 0.75
    assert early.hold(("10.0.0.1", 4000)) == 0.25
    clock.now += 0.25
    assert early.hold(("10.0.0.1", 4000)) == 0  # it waited as told


def test_a_hold_is_never_longer_than_hold_s() -> None:
    clock = Clock()
    early = EarlyReturns(hold_s=1.5, clock=clock)
    early.told(("10.0.0.1", 4000), LONGEST_S)
    assert early.hold(("10.0.0.1", 4000)) == 1.5
    off = EarlyReturns(hold_s=0, clock=clock)
    off.told(("10.0.0.1", 4000), LONGEST_S)
    assert off.hold(("10.0.0.1", 4000)) == 0
    early.told(None, 5)  # a client without an address (a Unix socket) is never held
    assert early.hold(None) == 0


def test_connections_whose_time_is_up_are_forgotten() -> None:
    clock = Clock()
    early = EarlyReturns(hold_s=1.5, clock=clock)
    for port in range(20_000):
        early.told(("10.0.0.1", port), 1)
        clock.now += 0.001
    assert len(early._due) <= 10_000  # a crowd of past clients does not pile up
    assert early.hold(("10.0.0.1", 19_999)) > 0  # the recent ones are still remembered
