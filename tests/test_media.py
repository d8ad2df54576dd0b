"""Tests of p2psocial.media: pictures re-encoded without metadata, scaled, thumbnailed.

Every test image is built in memory with Pillow; nothing touches disk or network.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageChops, PngImagePlugin

from p2psocial import media
from p2psocial.errors import BlobRefused, ConfigError, UnpublishableContent
from p2psocial.media import (
    MAX_PIXELS,
    MAX_SIDE,
    THUMB_SIDE,
    Picture,
    PreparedImage,
    had_metadata,
    is_image,
    prepare_image,
)

SERIAL = "SN-4711-XYZ"
METADATA_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop")

# ---------------------------------------------------------------------------- helpers


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def encode_frames(frames: list[Image.Image], fmt: str, **options: Any) -> bytes:
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def camera_exif(orientation: int | None = None) -> Image.Exif:
    """EXIF as a phone writes it: camera, serial number and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS 5D"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = SERIAL  # 0xA431
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)  # 0x8825
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 33.0)
    return exif


def two_halves(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Top half red, bottom half blue: orientation shows in where the colours end up."""
    width, height = size
    img = Image.new(mode, size, "blue")
    img.paste("red", (0, 0, width, height // 2))
    return img


def assert_no_metadata(data: bytes) -> None:
    assert not had_metadata(data)
    with opened(data) as im:
        assert len(im.getexif()) == 0
        for key in METADATA_KEYS:
            assert key not in im.info
    assert SERIAL.encode() not in data
    assert b"Canon" not in data


def near(pixel: Any, colour: tuple[int, ...], slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(pixel, colour, strict=False))


def png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR is patched to claim ``width`` x ``height`` (CRC fixed)."""
    data = bytearray(encode(Image.new("RGB", (8, 8), "white"), "PNG"))
    assert data[12:16] == b"IHDR"
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# ---------------------------------------------------------------------------- metadata


def test_jpeg_loses_exif_gps_serial_and_comment() -> None:
    source = encode(two_halves((64, 48)), "JPEG", exif=camera_exif(), comment=b"at home")
    assert had_metadata(source)
    with opened(source) as im:  # the fixture really carries what a phone writes
        assert im.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert SERIAL.encode() in source

    prepared = prepare_image(source)

    assert isinstance(prepared, PreparedImage)
    assert isinstance(prepared.full, Picture)
    assert prepared.full.media_type == "image/jpeg"
    assert (prepared.full.width, prepared.full.height) == (64, 48)
    assert prepared.metadata_removed
    assert not prepared.scaled
    assert prepared.thumbnail is None  # 64 px: the full picture is its own thumbnail
    assert_no_metadata(prepared.full.data)
    with opened(prepared.full.data) as out:
        assert out.format == "JPEG"
        assert out.info.get("progressive")
        assert near(out.getpixel((10, 5)), (255, 0, 0))
        assert near(out.getpixel((10, 40)), (0, 0, 255))


def test_orientation_is_applied_to_the_pixels() -> None:
    # Stored 60x40 with orientation 6: shown turned a quarter clockwise, so 40x60 with the
    # stored top (red) on the right.
    source = encode(two_halves((60, 40)), "JPEG", exif=camera_exif(orientation=6))

    full = prepare_image(source).full

    assert (full.width, full.height) == (40, 60)
    with opened(full.data) as out:
        assert out.size == (40, 60)
        assert len(out.getexif()) == 0  # no orientation tag left to turn it again
        assert near(out.getpixel((35, 30)), (255, 0, 0))
        assert near(out.getpixel((4, 30)), (0, 0, 255))


def test_orientation_and_scaling_together() -> None:
    source = encode(two_halves((400, 300)), "JPEG", exif=camera_exif(orientation=6))

    prepared = prepare_image(source, max_side=100, thumb_side=40)

    assert (prepared.full.width, prepared.full.height) == (75, 100)
    assert prepared.scaled
    with opened(prepared.full.data) as out:
        assert out.size == (75, 100)
        assert near(out.getpixel((70, 50)), (255, 0, 0))
        assert near(out.getpixel((5, 50)), (0, 0, 255))
    assert prepared.thumbnail is not None
    assert (prepared.thumbnail.width, prepared.thumbnail.height) == (30, 40)


def test_orientation_only_is_not_metadata() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 3
    source = encode(two_halves((40, 20)), "JPEG", exif=exif)

    assert not had_metadata(source)
    prepared = prepare_image(source)
    assert not prepared.metadata_removed
    with opened(prepared.full.data) as out:  # turned upside down: red now at the bottom
        assert near(out.getpixel((20, 17)), (255, 0, 0))


def raw_exif(*directories: list[tuple[int, int, int, int]]) -> bytes:
    """A little-endian EXIF block of chained directories of (tag, type, count, value)."""
    out = b"II*\x00" + struct.pack("<I", 8)
    for index, entries in enumerate(directories):
        following = len(out) + 2 + 12 * len(entries) + 4
        out += struct.pack("<H", len(entries))
        out += b"".join(struct.pack("<HHII", *entry) for entry in entries)
        out += struct.pack("<I", following if index + 1 < len(directories) else 0)
    return b"Exif\x00\x00" + out


def test_an_embedded_exif_preview_counts_as_metadata() -> None:
    # IFD0 holds only an orientation; IFD1 describes the embedded preview (JPEG compressed),
    # which may show what the picture looked like before it was cropped.
    exif = raw_exif([(ExifTags.Base.Orientation, 3, 1, 1)], [(ExifTags.Base.Compression, 3, 1, 6)])
    source = encode(Image.new("RGB", (20, 20)), "JPEG", exif=exif)
    assert had_metadata(source)
    prepared = prepare_image(source)
    assert prepared.metadata_removed
    assert_no_metadata(prepared.full.data)


def test_corrupt_exif_does_not_refuse_the_picture() -> None:
    # A Make tag pointing past the end of the data: Pillow warns (an error under pytest's
    # filterwarnings) and skips it. The picture is still fine to publish.
    exif = raw_exif([(ExifTags.Base.Make, 2, 100, 5000)])
    source = encode(two_halves((40, 30)), "JPEG", exif=exif)
    prepared = prepare_image(source)
    assert_no_metadata(prepared.full.data)


def test_jpeg_xmp_counts_as_metadata_and_is_dropped() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    source = encode(Image.new("RGB", (30, 20), "green"), "JPEG", xmp=xmp)
    assert had_metadata(source)

    prepared = prepare_image(source)

    assert prepared.metadata_removed
    assert_no_metadata(prepared.full.data)
    assert b"xmpmeta" not in prepared.full.data


def test_png_text_and_exif_chunks_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Alice Example")
    info.add_itxt("Comment", "taken at home", zip=True)
    source = encode(Image.new("RGB", (30, 20), "white"), "PNG", pnginfo=info, exif=camera_exif())
    assert had_metadata(source)

    prepared = prepare_image(source)

    assert prepared.metadata_removed
    assert prepared.full.media_type == "image/png"
    assert_no_metadata(prepared.full.data)
    assert b"Alice" not in prepared.full.data
    assert not had_metadata(encode(Image.new("RGB", (30, 20)), "PNG"))


def test_webp_loses_exif_and_xmp() -> None:
    source = encode(
        two_halves((48, 32)), "WEBP", exif=camera_exif(), xmp=b"<x:xmpmeta>secret</x:xmpmeta>"
    )
    assert had_metadata(source)

    prepared = prepare_image(source)

    assert prepared.full.media_type == "image/webp"
    assert prepared.metadata_removed
    assert_no_metadata(prepared.full.data)
    assert b"secret" not in prepared.full.data


def test_icc_profile_is_kept() -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = encode(Image.new("RGB", (400, 200), "orange"), "JPEG", icc_profile=icc)

    prepared = prepare_image(source)

    assert not prepared.metadata_removed
    assert prepared.thumbnail is not None
    for picture in (prepared.full, prepared.thumbnail):
        with opened(picture.data) as out:
            assert out.info.get("icc_profile") == icc


def test_tiff_layout_tags_are_not_metadata_but_an_artist_is() -> None:
    plain = encode(Image.new("RGB", (20, 10), "white"), "TIFF")
    assert not had_metadata(plain)
    tagged = Image.Exif()
    tagged[ExifTags.Base.Artist] = "Alice Example"
    assert had_metadata(encode(Image.new("RGB", (20, 10)), "TIFF", exif=tagged))


# ---------------------------------------------------------------------------- sizes


def test_a_large_photo_is_scaled_to_the_limit_and_thumbnailed() -> None:
    img = Image.new("RGB", (4000, 3000), (200, 120, 40))
    img.paste((20, 40, 200), (0, 1500, 4000, 3000))
    source = encode(img, "JPEG", quality=70)

    prepared = prepare_image(source)

    assert prepared.scaled
    assert (prepared.full.width, prepared.full.height) == (MAX_SIDE, 1536)
    thumb = prepared.thumbnail
    assert thumb is not None
    assert (thumb.width, thumb.height) == (THUMB_SIDE, 240)
    assert thumb.media_type == "image/jpeg"
    for picture in (prepared.full, thumb):
        with opened(picture.data) as out:
            assert out.size == (picture.width, picture.height)
            assert out.format == "JPEG"
            assert near(out.getpixel((5, 5)), (200, 120, 40))
            assert near(out.getpixel((5, picture.height - 5)), (20, 40, 200))
        assert_no_metadata(picture.data)


def test_portrait_keeps_its_aspect() -> None:
    source = encode(Image.new("RGB", (300, 1000), "white"), "PNG")

    prepared = prepare_image(source, max_side=500, thumb_side=100)

    assert (prepared.full.width, prepared.full.height) == (150, 500)
    assert prepared.thumbnail is not None
    assert (prepared.thumbnail.width, prepared.thumbnail.height) == (30, 100)


def test_thumbnail_is_never_upscaled() -> None:
    at_limit = prepare_image(encode(Image.new("RGB", (320, 200)), "PNG"))
    assert at_limit.thumbnail is None
    assert not at_limit.scaled
    just_over = prepare_image(encode(Image.new("RGB", (321, 100)), "PNG"))
    assert just_over.thumbnail is not None
    assert (just_over.thumbnail.width, just_over.thumbnail.height) == (320, 100)


def test_sides_below_one_are_a_config_error() -> None:
    source = encode(Image.new("RGB", (4, 4)), "PNG")
    with pytest.raises(ConfigError):
        prepare_image(source, max_side=0)
    with pytest.raises(ConfigError):
        prepare_image(source, thumb_side=0)


# ---------------------------------------------------------------------------- formats


def test_png_with_alpha_stays_png_and_its_thumbnail_too() -> None:
    img = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    img.paste((0, 200, 0, 255), (100, 75, 300, 225))
    prepared = prepare_image(encode(img, "PNG"))

    assert prepared.full.media_type == "image/png"
    thumb = prepared.thumbnail
    assert thumb is not None
    assert thumb.media_type == "image/png"
    assert (thumb.width, thumb.height) == (320, 240)
    with opened(prepared.full.data) as full, opened(thumb.data) as small:
        assert full.mode == "RGBA"
        assert ImageChops.difference(full.convert("RGBA"), img).getbbox() is None  # lossless
        assert small.mode == "RGBA"
        assert small.getpixel((5, 5))[3] == 0  # type: ignore[index]
        assert small.getpixel((160, 120)) == (0, 200, 0, 255)


def test_opaque_png_gets_a_jpeg_thumbnail() -> None:
    prepared = prepare_image(encode(Image.new("RGBA", (640, 480), (9, 9, 9, 255)), "PNG"))
    assert prepared.full.media_type == "image/png"
    assert prepared.thumbnail is not None
    assert prepared.thumbnail.media_type == "image/jpeg"


def test_palette_png_with_transparency_stays_a_palette_png() -> None:
    img = Image.new("P", (40, 30), 1)
    img.putpalette([0, 0, 0, 255, 0, 0])
    img.paste(0, (0, 0, 20, 30))
    source = encode(img, "PNG", transparency=0)

    prepared = prepare_image(source)

    with opened(prepared.full.data) as out:
        assert out.mode == "P"
        rgba = out.convert("RGBA")
        assert rgba.getpixel((5, 5)) == (0, 0, 0, 0)
        assert rgba.getpixel((30, 5)) == (255, 0, 0, 255)


def test_sixteen_bit_grey_keeps_its_range() -> None:
    img = Image.new("I;16", (400, 10), 0)
    img.paste(65535, (0, 0, 200, 10))
    img.paste(32896, (200, 0, 400, 10))
    source = encode(img, "PNG")
    with opened(prepare_image(source).full.data) as out:
        assert out.mode == "I;16"  # not scaled: kept losslessly
        assert out.getpixel((10, 1)) == 65535
    prepared = prepare_image(source, max_side=100)

    with opened(prepared.full.data) as out:
        assert out.mode == "L"
        assert out.getpixel((10, 1)) == 255
        assert out.getpixel((90, 1)) == 128


def test_bmp_becomes_jpeg_and_transparent_tiff_becomes_png() -> None:
    bmp = prepare_image(encode(two_halves((40, 30)), "BMP"))
    assert bmp.full.media_type == "image/jpeg"
    tiff = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    tiff.paste((255, 0, 0, 255), (0, 0, 10, 10))
    prepared = prepare_image(encode(tiff, "TIFF"))
    assert prepared.full.media_type == "image/png"
    with opened(prepared.full.data) as out:
        assert out.getpixel((5, 5)) == (255, 0, 0, 255)
        assert out.getpixel((30, 20)) == (0, 0, 0, 0)


def test_cmyk_jpeg_becomes_rgb() -> None:
    source = encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG")  # red ink

    prepared = prepare_image(source)

    with opened(prepared.full.data) as out:
        assert out.mode == "RGB"
        assert near(out.getpixel((20, 15)), (255, 0, 0))


def test_lossless_webp_stays_lossless() -> None:
    img = Image.new("RGB", (30, 20), (10, 20, 30))
    img.putpixel((3, 3), (250, 1, 2))
    prepared = prepare_image(encode(img, "WEBP", lossless=True))
    with opened(prepared.full.data) as out:
        assert ImageChops.difference(out.convert("RGB"), img).getbbox() is None


def test_same_input_same_bytes() -> None:
    source = encode(two_halves((500, 300)), "JPEG", exif=camera_exif(orientation=8))
    assert prepare_image(source) == prepare_image(source)


# ---------------------------------------------------------------------------- animation


def moving_square(count: int, size: tuple[int, int] = (40, 30)) -> list[Image.Image]:
    frames = []
    for i in range(count):
        frame = Image.new("RGBA", size, (0, 0, 0, 0))
        frame.paste((255, 0, 0, 255), (i * 8, 5, i * 8 + 10, 15))
        frame.paste((0, 0, 255, 255), (0, 20, size[0], size[1]))
        frames.append(frame)
    return frames


def decoded_frames(data: bytes) -> list[tuple[Image.Image, Any]]:
    with opened(data) as im:
        out = []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            out.append((im.convert("RGBA"), im.info.get("duration")))
        return out


def test_animated_gif_keeps_its_frames_timing_and_transparency() -> None:
    frames = moving_square(4)
    source = encode_frames(frames, "GIF", duration=[100, 200, 100, 50], loop=0, disposal=2)

    prepared = prepare_image(source)

    assert prepared.full.media_type == "image/gif"
    assert prepared.thumbnail is None
    got = decoded_frames(prepared.full.data)
    assert [duration for _, duration in got] == [100, 200, 100, 50]
    for (frame, _), original in zip(got, frames, strict=True):
        assert ImageChops.difference(frame, original).getbbox() is None
    with opened(prepared.full.data) as out:
        assert out.info.get("loop") == 0


def test_animated_gif_is_scaled_frame_by_frame() -> None:
    source = encode_frames(moving_square(3, (80, 60)), "GIF", duration=70)

    prepared = prepare_image(source, max_side=40, thumb_side=20)

    assert prepared.scaled
    assert (prepared.full.width, prepared.full.height) == (40, 30)
    got = decoded_frames(prepared.full.data)
    assert len(got) == 3
    assert all(frame.size == (40, 30) for frame, _ in got)
    assert prepared.thumbnail is not None
    assert prepared.thumbnail.media_type == "image/png"  # the first frame, with transparency
    assert (prepared.thumbnail.width, prepared.thumbnail.height) == (20, 15)


def test_animation_over_the_pixel_budget_keeps_its_first_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = encode_frames(moving_square(3), "GIF", duration=70)  # 3 x 1200 pixels
    monkeypatch.setattr(media, "MAX_PIXELS", 3000)

    prepared = prepare_image(source)

    with opened(prepared.full.data) as out:
        assert not getattr(out, "is_animated", False)
        assert ImageChops.difference(out.convert("RGBA"), moving_square(1)[0]).getbbox() is None


def test_animated_webp_and_png_keep_their_frames() -> None:
    frames = moving_square(3)
    for fmt, options in (("WEBP", {"lossless": True}), ("PNG", {})):
        source = encode_frames(frames, fmt, duration=[40, 80, 120], loop=0, **options)
        prepared = prepare_image(source)
        got = decoded_frames(prepared.full.data)
        assert [round(duration) for _, duration in got] == [40, 80, 120]
        for (frame, _), original in zip(got, frames, strict=True):
            assert ImageChops.difference(frame, original).getbbox() is None


# ---------------------------------------------------------------------------- keep metadata


def test_keep_metadata_keeps_the_bytes_exactly() -> None:
    source = encode(two_halves((400, 300)), "JPEG", exif=camera_exif(orientation=6))

    prepared = prepare_image(source, keep_metadata=True, max_side=100, thumb_side=50)

    assert prepared.full.data == source
    assert prepared.full.media_type == "image/jpeg"
    assert (prepared.full.width, prepared.full.height) == (300, 400)  # as displayed
    assert not prepared.scaled
    assert not prepared.metadata_removed
    thumb = prepared.thumbnail
    assert thumb is not None
    assert (thumb.width, thumb.height) == (38, 50)
    assert_no_metadata(thumb.data)


def test_keep_metadata_names_the_original_type() -> None:
    prepared = prepare_image(encode(Image.new("RGB", (8, 8)), "BMP"), keep_metadata=True)
    assert prepared.full.media_type == "image/bmp"


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is a plain text file\n",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",  # would run Ghostscript
        bytes(range(256)) * 4,
    ],
)
def test_non_images_are_refused(data: bytes) -> None:
    assert not is_image(data)
    with pytest.raises(BlobRefused, match="not an image Pillow can read"):
        prepare_image(data)
    with pytest.raises(BlobRefused, match="not an image Pillow can read"):
        had_metadata(data)


def test_refusal_is_unpublishable_content() -> None:
    with pytest.raises(UnpublishableContent):
        prepare_image(b"nope")


def test_truncated_image_is_refused() -> None:
    source = encode(two_halves((200, 200)), "PNG")
    cut = source[: len(source) // 2]
    assert is_image(cut)  # the header is fine ...
    with pytest.raises(BlobRefused, match="could not be decoded"):
        prepare_image(cut)  # ... the pixels are not


def test_is_image_on_images() -> None:
    for fmt in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"):
        assert is_image(encode(Image.new("RGB", (4, 4)), fmt)), fmt


def test_over_the_limit_is_refused_from_the_header() -> None:
    source = png_claiming(8000, 7000)  # 56 megapixels: over ours, under Pillow's own limit
    assert is_image(source)
    with pytest.raises(BlobRefused, match="image is 8000x7000 pixels; the limit is 50 megapix"):
        prepare_image(source)
    with pytest.raises(BlobRefused, match="8000x7000"):
        prepare_image(source, keep_metadata=True)
    with pytest.raises(BlobRefused, match="8000x7000"):
        had_metadata(source)


@pytest.mark.parametrize("side", [10_000, 30_000])
def test_decompression_bombs_are_refused_without_a_warning(side: int) -> None:
    # 100 megapixels makes Pillow warn; 900 makes it raise. Either way: a clear refusal,
    # no allocation (30000x30000 RGB would take 2.7 GB), and no warning escapes, even
    # where warnings are only shown and not errors.
    source = png_claiming(side, side)
    assert side * side > MAX_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert is_image(source)
        with pytest.raises(BlobRefused, match="megapixels"):
            prepare_image(source)
        with pytest.raises(BlobRefused, match="megapixels"):
            had_metadata(source)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
