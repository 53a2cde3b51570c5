from __future__ import annotations

import warnings

import pytest
from PIL import ExifTags, Image

from media.images import (
    DEFAULT_MAX_BYTES,
    ImageRejected,
    ImageType,
    RejectReason,
    inspect_image,
    make_renditions,
    safe_filename,
    sniff_image_type,
    strip_metadata,
)
from tests.media.sample_images import (
    BLUE,
    HOME_COMMENT,
    RED,
    decoded,
    gif,
    jpeg_with_embedded_thumbnail,
    jpeg_with_gps,
    plain_jpeg,
    png_declaring,
    png_with_broken_pixels,
    png_with_metadata,
    progressive_jpeg,
    webp_with_gps,
    zip_payload,
)


def assert_no_metadata(image: Image.Image) -> None:
    exif = image.getexif()
    assert ExifTags.IFD.GPSInfo not in exif
    assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert len(exif) == 0
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "Comment", "comment"):
        assert key not in image.info


def close_to(pixel: object, colour: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= 40 for a, b in zip(pixel[:3], colour, strict=True))


# --- type by content ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(plain_jpeg(), ImageType.JPEG, id="jpeg"),
        pytest.param(png_with_metadata(), ImageType.PNG, id="png"),
        pytest.param(webp_with_gps(), ImageType.WEBP, id="webp"),
        pytest.param(b"hello, this is a photo.jpg honestly", None, id="text"),
        pytest.param(gif(), None, id="gif"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVEfmt ", None, id="riff-but-wav"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_the_image_type_is_read_from_the_magic_bytes(
    data: bytes, expected: ImageType | None
) -> None:
    assert sniff_image_type(data) == expected


# --- inspect: accepted ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "image_type", "size"),
    [
        pytest.param(jpeg_with_gps(1600, 1200), ImageType.JPEG, (1600, 1200), id="jpeg"),
        pytest.param(png_with_metadata(800, 600), ImageType.PNG, (800, 600), id="png"),
        pytest.param(webp_with_gps(1000, 750), ImageType.WEBP, (1000, 750), id="webp"),
        pytest.param(progressive_jpeg(640, 480), ImageType.JPEG, (640, 480), id="progressive"),
        pytest.param(
            jpeg_with_embedded_thumbnail(), ImageType.JPEG, (800, 600), id="exif-thumbnail"
        ),
    ],
)
def test_a_real_photo_is_accepted_with_its_type_and_dimensions(
    data: bytes, image_type: ImageType, size: tuple[int, int]
) -> None:
    info = inspect_image(data, declared_content_type=image_type.content_type)

    assert info.image_type is image_type
    assert info.content_type == f"image/{image_type.value}"
    assert (info.width, info.height) == size
    assert info.size_bytes == len(data)


def test_a_portrait_phone_photo_reports_its_displayed_dimensions() -> None:
    info = inspect_image(jpeg_with_gps(1600, 1200, orientation=6))

    assert (info.width, info.height) == (1200, 1600)


@pytest.mark.parametrize(
    "declared",
    ["image/jpeg", "image/jpg", "IMAGE/JPEG", "image/jpeg; charset=binary", "image/pjpeg"],
)
def test_usual_spellings_of_the_jpeg_content_type_match_a_jpeg(declared: str) -> None:
    assert inspect_image(plain_jpeg(), declared_content_type=declared).image_type is ImageType.JPEG


def test_a_phone_photo_with_an_hdr_gain_map_appended_is_accepted() -> None:
    # MPF: Android and iOS append further JPEGs (gain maps, depth) after the primary image.
    data = jpeg_with_gps(800, 600) + plain_jpeg(200, 150)

    assert inspect_image(data).width == 800


def test_a_little_zero_padding_after_the_image_is_tolerated() -> None:
    assert inspect_image(plain_jpeg() + b"\x00" * 64).image_type is ImageType.JPEG


def test_a_file_of_exactly_the_byte_limit_is_accepted_and_one_byte_more_is_not() -> None:
    data = plain_jpeg()

    assert inspect_image(data, max_bytes=len(data)).size_bytes == len(data)
    with pytest.raises(ImageRejected) as rejected:
        inspect_image(data, max_bytes=len(data) - 1)
    assert rejected.value.reason_code is RejectReason.TOO_LARGE


def test_an_image_of_exactly_the_pixel_limit_is_accepted_and_one_column_more_is_not() -> None:
    assert inspect_image(png_declaring(100, 100), max_pixels=10_000).width == 100
    with pytest.raises(ImageRejected) as rejected:
        inspect_image(png_declaring(101, 100), max_pixels=10_000)
    assert rejected.value.reason_code is RejectReason.TOO_MANY_PIXELS


# --- inspect: refused -----------------------------------------------------------------------


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "declared", "reason"),
    [
        pytest.param(b"", None, RejectReason.EMPTY, id="zero-bytes"),
        pytest.param(
            b"Hello, this text file is named anh-buoi.jpg",
            "image/jpeg",
            RejectReason.NOT_AN_IMAGE,
            id="text-named-jpg",
        ),
        pytest.param(
            b"<html><script>alert(1)</script></html>", None, RejectReason.NOT_AN_IMAGE, id="html"
        ),
        pytest.param(zip_payload(), None, RejectReason.NOT_AN_IMAGE, id="zip"),
        pytest.param(gif(), None, RejectReason.UNSUPPORTED_TYPE, id="gif"),
        pytest.param(
            png_with_metadata(), "image/jpeg", RejectReason.TYPE_MISMATCH, id="png-declared-jpeg"
        ),
        pytest.param(plain_jpeg(), "text/plain", RejectReason.TYPE_MISMATCH, id="jpeg-as-text"),
        pytest.param(
            plain_jpeg() + b"\x00" * DEFAULT_MAX_BYTES, None, RejectReason.TOO_LARGE, id="oversized"
        ),
        pytest.param(_truncated(plain_jpeg()), None, RejectReason.CORRUPT, id="truncated-jpeg"),
        pytest.param(
            _truncated(png_with_metadata()), None, RejectReason.CORRUPT, id="truncated-png"
        ),
        pytest.param(_truncated(webp_with_gps()), None, RejectReason.CORRUPT, id="truncated-webp"),
        pytest.param(png_with_broken_pixels(), None, RejectReason.CORRUPT, id="garbage-pixels"),
        pytest.param(
            png_with_metadata() + zip_payload(), None, RejectReason.TRAILING_DATA, id="png+zip"
        ),
        pytest.param(
            plain_jpeg() + b"<script>fetch('//evil.example')</script>",
            None,
            RejectReason.TRAILING_DATA,
            id="jpeg+script",
        ),
        pytest.param(
            webp_with_gps() + zip_payload(), None, RejectReason.TRAILING_DATA, id="webp+zip"
        ),
        pytest.param(
            plain_jpeg() + plain_jpeg() + b"PK\x03\x04payload",
            None,
            RejectReason.TRAILING_DATA,
            id="jpeg-chain+zip",
        ),
    ],
)
def test_bad_uploads_are_refused_with_a_stable_reason(
    data: bytes, declared: str | None, reason: RejectReason
) -> None:
    with pytest.raises(ImageRejected) as rejected:
        inspect_image(data, declared_content_type=declared)

    assert rejected.value.reason_code is reason
    assert rejected.value.message


@pytest.mark.parametrize(
    ("width", "height"),
    [
        pytest.param(20_000, 20_000, id="400MP-pillow-raises"),
        pytest.param(10_000, 10_000, id="100MP-pillow-only-warns"),
        pytest.param(8_000, 6_000, id="48MP-pillow-silent"),
    ],
)
def test_a_decompression_bomb_is_refused_for_its_pixel_count(width: int, height: int) -> None:
    bomb = png_declaring(width, height)
    assert len(bomb) < 60_000

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageRejected) as rejected:
            inspect_image(bomb)

    assert rejected.value.reason_code is RejectReason.TOO_MANY_PIXELS


def test_a_bomb_is_judged_by_its_header_before_any_pixel_is_decoded() -> None:
    # Its pixel data is not even zlib: decoding first would have said "corrupt".
    with pytest.raises(ImageRejected) as rejected:
        inspect_image(png_declaring(8_000, 6_000, valid_pixels=False))

    assert rejected.value.reason_code is RejectReason.TOO_MANY_PIXELS


# --- strip_metadata -------------------------------------------------------------------------


def test_gps_and_all_other_metadata_are_gone_from_a_stripped_jpeg() -> None:
    original = jpeg_with_gps()
    assert decoded(original).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    assert decoded(original).info["comment"] == HOME_COMMENT.encode()
    assert "icc_profile" in decoded(original).info

    stripped = strip_metadata(original)

    image = decoded(stripped)
    assert image.format == "JPEG"
    assert_no_metadata(image)
    assert b"GPS" not in stripped
    assert b"104,59.9E" not in stripped
    assert HOME_COMMENT.encode() not in stripped


@pytest.mark.parametrize(
    ("data", "pil_format"),
    [
        pytest.param(png_with_metadata(), "PNG", id="png"),
        pytest.param(webp_with_gps(), "WEBP", id="webp"),
    ],
)
def test_stripping_keeps_the_format_and_drops_the_metadata(data: bytes, pil_format: str) -> None:
    assert decoded(data).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    stripped = strip_metadata(data)

    image = decoded(stripped)

    assert image.format == pil_format
    assert_no_metadata(image)
    assert b"104,59.9E" not in stripped


def test_stripping_turns_a_sideways_phone_photo_upright() -> None:
    # Orientation 6: the stored left edge is the displayed top.
    image = decoded(strip_metadata(jpeg_with_gps(1600, 1200, orientation=6)))

    assert image.size == (1200, 1600)
    assert close_to(image.getpixel((600, 100)), RED)
    assert close_to(image.getpixel((600, 1500)), BLUE)


def test_stripping_a_png_keeps_its_transparency() -> None:
    image = decoded(strip_metadata(png_with_metadata(alpha=True)))

    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (0, 0, 0, 0)


def test_stripping_refuses_what_is_not_an_image_and_bombs() -> None:
    with pytest.raises(ImageRejected) as not_image:
        strip_metadata(b"GPS 22.8233N 104.9836E")
    with pytest.raises(ImageRejected) as bomb:
        strip_metadata(png_declaring(20_000, 20_000))

    assert not_image.value.reason_code is RejectReason.NOT_AN_IMAGE
    assert bomb.value.reason_code is RejectReason.TOO_MANY_PIXELS


# --- make_renditions ------------------------------------------------------------------------


def test_renditions_are_webp_at_320_and_1280_pixels_wide_keeping_the_aspect() -> None:
    renditions = make_renditions(jpeg_with_gps(2000, 1500))

    assert sorted(renditions) == [320, 1280]
    for width, data in renditions.items():
        assert sniff_image_type(data) is ImageType.WEBP
        image = decoded(data)
        assert image.format == "WEBP"
        assert image.size == (width, width * 3 // 4)
        assert_no_metadata(image)


def test_a_small_photo_is_never_upscaled() -> None:
    renditions = make_renditions(plain_jpeg(400, 300))

    assert decoded(renditions[320]).size == (320, 240)
    assert decoded(renditions[1280]).size == (400, 300)


def test_renditions_of_a_sideways_phone_photo_are_upright() -> None:
    renditions = make_renditions(jpeg_with_gps(1600, 1200, orientation=6))

    small = decoded(renditions[320])
    assert small.size == (320, 427)
    assert close_to(small.getpixel((160, 20)), RED)
    assert close_to(small.getpixel((160, 400)), BLUE)
    assert decoded(renditions[1280]).size == (1200, 1600)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(png_with_metadata(2000, 1000), id="png"),
        pytest.param(webp_with_gps(), id="webp"),
    ],
)
def test_png_and_webp_originals_get_webp_renditions_too(data: bytes) -> None:
    renditions = make_renditions(data, widths=(320,))

    image = decoded(renditions[320])
    assert image.format == "WEBP"
    assert image.width == 320


def test_renditions_keep_transparency() -> None:
    image = decoded(make_renditions(png_with_metadata(alpha=True), widths=(800,))[800])

    assert image.mode == "RGBA"


def test_renditions_need_positive_widths() -> None:
    with pytest.raises(ValueError, match="positive"):
        make_renditions(plain_jpeg(), widths=(320, 0))


# --- safe_filename --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("../../etc/passwd", "passwd", id="posix-traversal"),
        pytest.param("C:\\Users\\lan\\Ảnh vườn.jpg", "Anh_vuon.jpg", id="windows-path"),
        pytest.param("Ảnh bưởi đỏ Đoan Hùng.JPG", "Anh_buoi_do_Doan_Hung.JPG", id="vietnamese"),
        pytest.param("..", "file", id="dot-dot"),
        pytest.param("", "file", id="empty"),
        pytest.param(".bashrc", "bashrc", id="hidden"),
        pytest.param("\x00\x1b[31mred.png", "31mred.png", id="control-characters"),
        pytest.param(
            "photo\r\nContent-Type: text/html.jpg",
            "html.jpg",
            id="header-injection-with-a-slash",
        ),
        pytest.param("CON.txt", "file_CON.txt", id="windows-device"),
        pytest.param("vải thiều", "vai_thieu", id="no-extension"),
        pytest.param("山竹.png", "file.png", id="nothing-foldable"),
        pytest.param("report\r\nX-Injected: 1.pdf", "report_X-Injected_1.pdf", id="crlf"),
    ],
)
def test_client_file_names_become_short_safe_ascii_labels(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_a_long_file_name_is_cut_but_keeps_its_extension() -> None:
    name = safe_filename("xoai-cat-hoa-loc-" * 20 + ".jpeg")

    assert len(name) == 64
    assert name.endswith(".jpeg")
