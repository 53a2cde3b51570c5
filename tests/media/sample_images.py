"""Real image files made with Pillow for the media tests, plus the hostile ones."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import ExifTags, Image, ImageCms, PngImagePlugin

RED = (200, 30, 30)
BLUE = (30, 30, 200)

# A farmer's home in Hà Giang: exactly what must never be published.
FARM_LATITUDE = ((22, 1), (49, 1), (2412, 100))
FARM_LONGITUDE = ((104, 1), (59, 1), (96, 100))

HOME_COMMENT = "nha ong Lu Van Pao, thon Na Loa, 22.8233N 104.9836E"

XMP_WITH_GPS = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="22,49.4N" '
    b'exif:GPSLongitude="104,59.9E"/></rdf:RDF></x:xmpmeta>'
)


def srgb_icc() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return profile.tobytes()


def two_colour_photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: orientation shows in which half ends up where."""
    image = Image.new(mode, (width, height), BLUE if mode == "RGB" else (*BLUE, 255))
    left = Image.new(mode, (width // 2, height), RED if mode == "RGB" else (*RED, 255))
    image.paste(left, (0, 0))
    return image


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "samsung"
    exif[ExifTags.Base.Model] = "Galaxy A15"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: tuple(n / d for n, d in FARM_LATITUDE),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: tuple(n / d for n, d in FARM_LONGITUDE),
    }
    return exif


def jpeg_with_gps(width: int = 1600, height: int = 1200, *, orientation: int = 1) -> bytes:
    """A phone photo: EXIF with GPS and an orientation tag, plus XMP repeating the GPS."""
    out = io.BytesIO()
    two_colour_photo(width, height).save(
        out,
        format="JPEG",
        quality=85,
        exif=gps_exif(orientation),
        xmp=XMP_WITH_GPS,
        comment=HOME_COMMENT,
        icc_profile=srgb_icc(),
    )
    return out.getvalue()


def plain_jpeg(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    two_colour_photo(width, height).save(out, format="JPEG", quality=85)
    return out.getvalue()


def progressive_jpeg(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    two_colour_photo(width, height).save(out, format="JPEG", quality=85, progressive=True)
    return out.getvalue()


def jpeg_with_embedded_thumbnail() -> bytes:
    """A thumbnail (a whole JPEG, end marker included) carried in an APP1 segment, as cameras
    do in EXIF: the image must not be thought to end at the thumbnail's end marker."""
    thumbnail = plain_jpeg(160, 120)
    body = b"Exif\x00\x00" + thumbnail
    segment = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    main = plain_jpeg(800, 600)
    return main[:2] + segment + main[2:]


def png_with_metadata(width: int = 800, height: int = 600, *, alpha: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", HOME_COMMENT)
    info.add_itxt("XML:com.adobe.xmp", XMP_WITH_GPS.decode())
    image = two_colour_photo(width, height, "RGBA" if alpha else "RGB")
    if alpha:
        image.putpixel((0, 0), (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, exif=gps_exif(), icc_profile=srgb_icc())
    return out.getvalue()


def webp_with_gps(width: int = 1000, height: int = 750) -> bytes:
    out = io.BytesIO()
    two_colour_photo(width, height).save(
        out, format="WEBP", quality=80, exif=gps_exif(), xmp=XMP_WITH_GPS
    )
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (10, 10)).save(out, format="GIF")
    return out.getvalue()


def zip_payload() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.html", "<script>document.location='https://evil.example'</script>")
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, *, valid_pixels: bool = True) -> bytes:
    """A 1-bit grey PNG of all-black rows: a few kilobytes that claim width x height pixels.

    With `valid_pixels=False` the IDAT is not even zlib: any decoder would fail on it, so a
    rejection for pixel count proves the header was judged before decoding was tried.
    """
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if valid_pixels:
        row = bytes(1 + (width + 7) // 8)
        compressor = zlib.compressobj(9)
        parts = [compressor.compress(row) for _ in range(height)]
        parts.append(compressor.flush())
        idat = b"".join(parts)
    else:
        idat = b"this is not a zlib stream" * 4
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_with_broken_pixels() -> bytes:
    """Structurally a PNG (every chunk in place) whose compressed pixel data is garbage."""
    header = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"\x78\x9c" + b"\xde\xad\xbe\xef" * 64)
        + _png_chunk(b"IEND", b"")
    )


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
