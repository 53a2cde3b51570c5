"""Splitting settled money among households in whole đồng."""

from __future__ import annotations

from collections.abc import Mapping


def split_amount(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder split: the shares sum to `total` exactly and each is within 1 đồng of
    its exact proportion `total * weight / sum(weights)`.

    Every share first gets the floor of its proportion; the đồng left over go one each to the
    largest remainders, ties to the key that comes earlier in `weights`. A zero weight gets 0
    (its remainder is 0, and fewer đồng are left over than there are positive remainders).
    Integer arithmetic only: a float would lose đồng on large totals.
    """
    if isinstance(total, bool) or not isinstance(total, int):
        raise TypeError(f"total must be an int number of đồng, got {type(total).__name__}")
    if total < 0:
        raise ValueError(f"total must not be negative, got {total}")
    for key, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise TypeError(f"weight of {key!r} must be an int, got {type(weight).__name__}")
        if weight < 0:
            raise ValueError(f"weight of {key!r} must not be negative, got {weight}")
    weight_sum = sum(weights.values())
    if weight_sum == 0:
        raise ValueError("weights must not be empty or all zero")

    shares: dict[str, int] = {}
    remainders: list[tuple[int, int, str]] = []
    for position, (key, weight) in enumerate(weights.items()):
        share, remainder = divmod(total * weight, weight_sum)
        shares[key] = share
        remainders.append((-remainder, position, key))
    left_over = total - sum(shares.values())
    for _, _, key in sorted(remainders)[:left_over]:
        shares[key] += 1
    return shares
