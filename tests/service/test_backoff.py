"""The Retry-After advice: refused clients are told to wait their turn, the clients refused
before them over the requests answered per second, within 1 and LONGEST_S seconds."""

from __future__ import annotations

from service.backoff import LONGEST_S, RetryAdvice


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
