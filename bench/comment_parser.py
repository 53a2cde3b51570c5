"""Throughput of the livestream comment parser on one core, over a realistic comment mix.

    uv run python bench/comment_parser.py [--count 50000] [--seed 5]

A live session is mostly chatter ("đẹp quá shop ơi") with orders, questions, cancels and phone
numbers in between, typed with and without diacritics, in any case, with the odd emoji wall
or 5,000-character paste. The figures are comments per second for the whole mix (best of five
passes, warm caches as in a long-running worker) and per-comment latency percentiles; they
are printed and written to bench/results/comment_parser.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from marketplace.livestreams.comments import parse_comment

CODES = ("A1", "A2", "A3", "B1", "B2", "B3", "C1", "C2", "CAM1", "BUOI2", "QUYT3", "OI4")
RESULTS = Path(__file__).parent / "results" / "comment_parser.json"

CHATTER = (
    "đẹp quá shop ơi", "shop ơi hàng có tươi không", "❤️❤️❤️", "ngon quá 😍", "chào shop",
    "hôm nay live muộn vậy", "cam Xã Đoài năm nay ngọt không shop", "bưởi da xanh nhìn ngon ghê",
    "ship về Cần Thơ mất mấy ngày", "shop ơi cho xem lại quýt Thanh Bình", "hay quá", "👍",
    "em ở Hương Trà nè", "thanh trà mùa này ngon nhất", "ổi VietGAP Hương Xuân có không",
    "cho mình hỏi cốm An Thuận bán sao", "live vui quá", "mọi người ơi hàng xịn đó",
    "chị ơi nói to lên chút", "🔥🔥🔥", "mình mới vào", "ủng hộ bà con nông dân",
)  # fmt: skip
UNITS = ("hộp", "kg", "ký", "trái", "quả", "thùng", "túi", "bịch", "chai", "gói", "phần", "bó")
NUMBER_WORDS = ("một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười")
ORDERS = (
    "chốt {code}", "chốt {code} x{n}", "chốt {code} x {n}", "lấy {n} {unit} {code}",
    "{code}", "{code} x{n}", "{code}*{n}", "{code}: {n}", "đặt {word} {code}",
    "mua {n} {code} và {n2} {code2}", "chốt {code} {n} {code2} {n2}", "chị Hồng lấy {code}",
    "chốt đơn {code} sl {n} nha shop", "lấy {code} {n}kg", "chốt {code}, {code} x{n}",
    "cho mình {n} {code} với {n2} {code2} nha", "{code} số lượng {n}", "order {code} x{n}",
)  # fmt: skip
QUESTIONS = (
    "{code} còn không shop?", "{code} bao nhiêu", "{code} giá thế nào", "{code} ship được ko",
    "chốt {code} ship về Cần Thơ được không?", "{code} còn hàng không ạ",
)  # fmt: skip
CANCELS = ("hủy {code}", "ko lấy {code} nữa", "bỏ {code} nha", "huy {code} x{n}", "cancel {code}")
PHONE_FORMATS = ("{p}", "{p3} {p4} {p5}", "{p3}.{p4}.{p5}", "+84 {q}", "84-{q}", "{p3}-{p4}-{p5}")


def strip_diacritics(text: str) -> str:
    bare = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "D")


def phone(rng: random.Random) -> str:
    digits = "0" + rng.choice("35789") + "".join(rng.choices("0123456789", k=8))
    return rng.choice(PHONE_FORMATS).format(
        p=digits, p3=digits[:4], p4=digits[4:7], p5=digits[7:], q=f"{digits[1:4]} {digits[4:]}"
    )


def fill(template: str, rng: random.Random) -> str:
    code, code2 = rng.sample(CODES, 2)
    return template.format(
        code=rng.choice((code, code.lower())),
        code2=code2,
        n=rng.choice((1, 1, 2, 2, 3, 5, 10, 12)),
        n2=rng.randint(1, 4),
        unit=rng.choice(UNITS),
        word=rng.choice(NUMBER_WORDS),
    )


def comment(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.50:
        kind, text = "chatter", rng.choice(CHATTER)
    elif roll < 0.80:
        kind, text = "order", fill(rng.choice(ORDERS), rng)
    elif roll < 0.90:
        kind, text = "question", fill(rng.choice(QUESTIONS), rng)
    elif roll < 0.95:
        kind, text = "cancel", fill(rng.choice(CANCELS), rng)
    elif roll < 0.999:
        kind, text = "chatter-with-numbers", f"giá {rng.randint(50, 300)}k hả shop, 2.5kg"
    else:
        kind, text = "long", (rng.choice(CHATTER) + " ") * rng.randint(20, 250)
        text = text[:5000]
    if kind in {"order", "cancel"} and rng.random() < 0.35:
        text = f"{text} {phone(rng)}"
    if rng.random() < 0.4:
        text = strip_diacritics(text)
    if rng.random() < 0.1:
        text = text.upper()
    return kind, text


def timed_pass(comments: list[str], parse: Callable[[str], object]) -> float:
    start = time.perf_counter()
    for text in comments:
        parse(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as promised
    rng = random.Random(args.seed)
    mix = [comment(rng) for _ in range(args.count)]
    comments = [text for _, text in mix]

    def parse(text: str) -> object:
        return parse_comment(text, CODES)

    timed_pass(comments, parse)  # warm the per-session matcher and the folding tables
    passes = [timed_pass(comments, parse) for _ in range(5)]
    best = min(passes)

    latencies_us = []
    for text in comments:
        start = time.perf_counter_ns()
        parse(text)
        latencies_us.append((time.perf_counter_ns() - start) / 1000)
    latencies_us.sort()
    intents = Counter(str(parse_comment(text, CODES).intent) for text in comments)
    by_kind: dict[str, list[str]] = {}
    for kind, text in mix:
        by_kind.setdefault(kind, []).append(text)
    per_kind = {
        kind: round(len(texts) / min(timed_pass(texts, parse) for _ in range(3)))
        for kind, texts in sorted(by_kind.items())
    }

    result = {
        "comments": len(comments),
        "comments_per_second": round(len(comments) / best),
        "median_pass_seconds": round(statistics.median(passes), 4),
        "best_pass_seconds": round(best, 4),
        "latency_us": {
            "p50": round(latencies_us[len(latencies_us) // 2], 1),
            "p99": round(latencies_us[int(len(latencies_us) * 0.99)], 1),
            "max": round(latencies_us[-1], 1),
        },
        "mix": dict(Counter(kind for kind, _ in mix)),
        "comments_per_second_by_kind": per_kind,
        "intents": dict(intents),
        "mean_length_chars": round(statistics.fmean(len(text) for text in comments), 1),
        "codes": len(CODES),
        "seed": args.seed,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(
        f"{result['comments_per_second']:,} comments/s on one core "
        f"({len(comments):,} comments, best of 5 passes: {best:.3f} s; "
        f"p50 {result['latency_us']['p50']} µs, p99 {result['latency_us']['p99']} µs, "
        f"max {result['latency_us']['max']} µs)"
    )
    print(f"mix: {result['mix']}")
    print(f"comments/s by kind: {per_kind}")
    print(f"intents: {result['intents']}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
