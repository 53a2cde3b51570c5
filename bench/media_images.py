"""Time the upload check on phone-sized photos: inspect, strip, renditions.

    uv run python bench/media_images.py

Photos are synthetic but photo-like in cost (noise defeats compression, as real texture
does); the figures are per call on one core, median of five.
"""

from __future__ import annotations

import io
import resource
import statistics
import time
from collections.abc import Callable

from PIL import Image

from media.images import inspect_image, make_renditions, strip_metadata


def photo(width: int, height: int, image_format: str) -> bytes:
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    Image.blend(noise, gradient, 0.5).save(out, format=image_format, quality=90)
    return out.getvalue()


def median_ms(fn: Callable[[], object]) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def main() -> None:
    cases = [
        ("12 MP JPEG (4000x3000)", photo(4000, 3000, "JPEG")),
        ("40 MP JPEG (7744x5164)", photo(7744, 5164, "JPEG")),
        ("12 MP PNG (4000x3000)", photo(4000, 3000, "PNG")),
    ]
    print(f"{'photo':<26}{'bytes':>12}{'inspect':>10}{'strip':>10}{'renditions':>12}")
    for name, data in cases:
        inspect = median_ms(lambda data=data: inspect_image(data, max_bytes=len(data)))
        strip = median_ms(lambda data=data: strip_metadata(data))
        renditions = median_ms(lambda data=data: make_renditions(data))
        print(f"{name:<26}{len(data):>12}{inspect:>9.0f}ms{strip:>8.0f}ms{renditions:>10.0f}ms")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
