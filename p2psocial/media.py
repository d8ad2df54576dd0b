"""Pictures made fit to publish: metadata stripped, size capped, a thumbnail beside.

Everything here is pure: bytes in, bytes out, with no file or network I/O, no clock and no
randomness, so one input always gives the same output bytes (for one Pillow version), and
the blob id of a prepared picture is reproducible.

:func:`prepare_image` is what happens to an image the user adds (issue "Pictures done
right"):

* The EXIF orientation is applied to the pixels first (:func:`PIL.ImageOps.exif_transpose`),
  then the picture is re-encoded from its pixels alone. Only what is needed to show it
  correctly survives: the ICC colour profile (dropped when the colour space changes, e.g.
  CMYK to RGB) and palette transparency. EXIF (camera, serial number, GPS position, the
  embedded preview), XMP, IPTC, comments and PNG text chunks are gone.
* A picture whose long side is over ``max_side`` is scaled down (aspect kept, LANCZOS).
* A thumbnail (long side ``thumb_side``, never upscaled) is made as separate bytes.
* JPEG stays JPEG (quality 85, optimized, progressive), PNG stays PNG, WebP stays WebP
  (lossless if the source was), GIF stays GIF. Other formats Pillow reads here (BMP, TIFF,
  ICO, PPM, QOI, AVIF) become PNG if they show transparency, else JPEG. Thumbnails are JPEG,
  or PNG when they show transparency.
* Animated GIF, WebP and PNG (APNG) keep their frames and timing, as long as decoding them
  all costs at most :data:`MAX_PIXELS` pixels in total and there are at most 1000 frames;
  beyond that only the first frame is kept (a still picture). Multi-page TIFF and
  multi-picture JPEG (MPO) keep their first picture only.
* With ``keep_metadata=True`` the original bytes are kept exactly as given (not scaled,
  not stripped); the thumbnail is still made, metadata-free.

Decompression bombs are refused before any pixel is decoded: the size comes from the
header and anything over :data:`MAX_PIXELS` raises :class:`~p2psocial.errors.BlobRefused`.
Pillow's own ``DecompressionBombWarning`` is turned into that refusal, never printed, and
Pillow's ``UserWarning`` noise about damaged input (such as corrupt EXIF, which is dropped
anyway) is silenced. Both are done with :func:`warnings.catch_warnings`, which on Python 3.11
swaps process-wide filters while a call runs: harmless here, as only Pillow emits these.
Formats that run outside programs (EPS, through Ghostscript) are never opened.
"""

from __future__ import annotations

import io
import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import (
    ExifTags,
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    UnidentifiedImageError,
)

from p2psocial.errors import BlobRefused, ConfigError, P2PSocialError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "MAX_PIXELS",
    "MAX_SIDE",
    "THUMB_SIDE",
    "Picture",
    "PreparedImage",
    "had_metadata",
    "is_image",
    "prepare_image",
]

MAX_SIDE = 2048
"""A full picture's long side, in pixels, above which it is scaled down."""
THUMB_SIDE = 320
"""A thumbnail's long side, in pixels."""
MAX_PIXELS = 50_000_000
"""The most pixels a picture (or all frames of an animation together) may decode to."""

_MAX_FRAMES = 1000
_JPEG_QUALITY = 85
_WEBP_QUALITY = 85
_INPUT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "PPM", "QOI", "AVIF")
"""The Pillow formats we open (the JPEG reader also yields MPO). No EPS: it runs Ghostscript."""
_ANIMATED_FORMATS = {"GIF", "WEBP", "PNG"}
_MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_ORIENTATION = 0x0112
_GREY_MODES = {"1", "L", "LA", "La", "I", "F"}
_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}
_GIF_MODES = {"1", "L", "P"}
_DISPLAY_INFO = ("icc_profile", "transparency")
"""The only ``Image.info`` entries a re-encoded picture keeps: what it needs to show right."""
_METADATA_INFO = ("comment", "xmp", "XML:com.adobe.xmp", "photoshop")
# fmt: off
_DISPLAY_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 282, 283, 284,
    296, 301, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 347, 529, 530, 531,
    532, 34675,
})
# fmt: on
"""TIFF/EXIF tags that only say how to show the pixels (size, layout, colour, resolution,
orientation). Any other tag (camera, dates, GPS, serial numbers, ...) is metadata."""
_DISPLAY_SEGMENTS = (
    ("APP0", b"JFIF"),
    ("APP0", b"JFXX"),
    ("APP1", b"Exif\x00"),  # judged by its tags
    ("APP2", b"ICC_PROFILE"),
    ("APP2", b"MPF"),
    ("APP14", b"Adobe"),
)
"""JPEG application segments that are not metadata; any other one (XMP, IPTC, ...) is."""


@dataclass(frozen=True)
class Picture:
    """One encoded picture: the bytes to store as a blob, their media type and size."""

    data: bytes
    media_type: str
    width: int
    height: int


@dataclass(frozen=True)
class PreparedImage:
    """What :func:`prepare_image` made of an image.

    ``thumbnail`` is None when the full picture's long side is no larger than the thumbnail
    side (the full picture then serves as its own thumbnail). ``metadata_removed`` is True
    when the original carried metadata (EXIF beyond orientation and layout, XMP, IPTC,
    comments, PNG text) that the re-encode dropped. ``scaled`` is True when the full
    picture was scaled down.
    """

    full: Picture
    thumbnail: Picture | None
    metadata_removed: bool
    scaled: bool


# ---------------------------------------------------------------------------- public


def is_image(data: bytes) -> bool:
    """Whether ``data`` is an image in a format we read (only the header is looked at).

    An image too large to prepare still counts as an image (:func:`prepare_image` then
    refuses it), so a caller never stores such a picture as a plain file by mistake.
    """
    with _pillow_warnings():
        try:
            with Image.open(io.BytesIO(data), formats=_formats()):
                return True
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return True
        except Exception:
            return False


def had_metadata(data: bytes) -> bool:
    """Whether the image in ``data`` carries metadata: EXIF beyond orientation and layout
    (camera, dates, GPS, an embedded preview), XMP, IPTC, comments or PNG text chunks.

    Raises :class:`~p2psocial.errors.BlobRefused` if ``data`` is not an image we read.
    """
    with _refusals("image could not be read"):
        with _open(data) as im:
            return _metadata_in(im, data)


def prepare_image(
    data: bytes,
    *,
    keep_metadata: bool = False,
    max_side: int = MAX_SIDE,
    thumb_side: int = THUMB_SIDE,
) -> PreparedImage:
    """Make an image fit to publish: re-encoded without metadata, scaled down to
    ``max_side`` on its long side, with a thumbnail of ``thumb_side`` (see the module
    docstring for formats and animations).

    With ``keep_metadata`` the full picture is ``data`` untouched; its width and height are
    as displayed (after the EXIF orientation). Raises
    :class:`~p2psocial.errors.BlobRefused` for bytes that are not an image we read, a
    picture over :data:`MAX_PIXELS`, or one that fails to decode; and
    :class:`~p2psocial.errors.ConfigError` for a side below 1.
    """
    if max_side < 1 or thumb_side < 1:
        raise ConfigError(f"image sides must be at least 1 pixel, not {max_side}/{thumb_side}")
    with _refusals("image could not be decoded or re-encoded"):
        with _open(data) as im:
            if keep_metadata:
                shown, _ = _decode_still(im, None)
                media_type = _MEDIA_TYPES.get(im.format or "") or im.get_format_mimetype()
                full = Picture(data, media_type or "application/octet-stream", *shown.size)
                return PreparedImage(full, _thumbnail(shown, thumb_side), False, False)
            return _prepare(im, data, max_side, thumb_side)


# ---------------------------------------------------------------------------- guards


@contextmanager
def _pillow_warnings() -> Iterator[None]:
    """Turn Pillow's decompression bomb warning into an error; silence its input noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


@contextmanager
def _refusals(doing: str) -> Iterator[None]:
    """Run Pillow work: any exception it raises becomes :class:`BlobRefused`."""
    with _pillow_warnings():
        try:
            yield
        except P2PSocialError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise BlobRefused(_too_many_pixels(exc)) from exc
        except Exception as exc:
            raise BlobRefused(f"{doing}: {type(exc).__name__}: {exc}") from exc


def _too_many_pixels(exc: Exception) -> str:
    return f"image is over the limit of {MAX_PIXELS // 1_000_000} megapixels ({exc})"


def _formats() -> list[str]:
    Image.init()
    return [name for name in _INPUT_FORMATS if name in Image.OPEN]


def _open(data: bytes) -> ImageFile.ImageFile:
    """Open ``data`` (its header only) and check its size before any pixel is decoded."""
    try:
        im = Image.open(io.BytesIO(data), formats=_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BlobRefused(_too_many_pixels(exc)) from exc
    except UnidentifiedImageError as exc:
        raise BlobRefused(
            f"not an image Pillow can read: {len(data)} bytes in none of the formats "
            + ", ".join(_formats())
        ) from exc
    except Exception as exc:
        raise BlobRefused(f"not an image Pillow can read: {type(exc).__name__}: {exc}") from exc
    try:
        _check_size(im.size)
    except BlobRefused:
        im.close()
        raise
    return im


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise BlobRefused(f"image is {width}x{height} pixels: it has no pixels")
    if width * height > MAX_PIXELS:
        raise BlobRefused(
            f"image is {width}x{height} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels"
        )


# ---------------------------------------------------------------------------- metadata


def _metadata_in(im: Image.Image, data: bytes) -> bool:
    if im.format == "PNG":
        # Read the chunks: Pillow would decode every APNG frame to find text at the end.
        for kind, start, end in _chunks(data, 8, len(data), big_endian=True):
            if kind in (b"tEXt", b"zTXt", b"iTXt"):
                return True
            if kind == b"eXIf" and _exif_has_metadata(im, data[start:end]):
                return True
        return False
    if any(key in im.info for key in _METADATA_INFO):
        return True
    if isinstance(im, JpegImagePlugin.JpegImageFile):
        for marker, payload in im.applist:
            if not any(marker == m and payload.startswith(p) for m, p in _DISPLAY_SEGMENTS):
                return True
    return _exif_has_metadata(im, None)


def _exif_has_metadata(im: Image.Image, raw: bytes | None) -> bool:
    """Whether the EXIF of ``im`` (or the ``raw`` EXIF block) holds more than display tags."""
    try:
        if raw is None:
            exif = im.getexif()
        else:
            exif = Image.Exif()
            exif.load(raw)
        if any(tag not in _DISPLAY_TAGS for tag in exif):
            return True
        # EXIF's second directory is its embedded preview; in a TIFF it is the next page.
        return im.format != "TIFF" and bool(exif.get_ifd(ExifTags.IFD.IFD1))
    except Exception:
        return True  # EXIF is there but unreadable: count it as metadata


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_ORIENTATION, 1))
    except Exception:
        return 1


# ---------------------------------------------------------------------------- pixels


def _fit(size: tuple[int, int], side: int | None) -> tuple[int, int] | None:
    """The size that brings the long side down to ``side``, or None if it already fits."""
    width, height = size
    if side is None or max(width, height) <= side:
        return None
    if width >= height:
        return side, max(1, (2 * height * side + width) // (2 * width))
    return max(1, (2 * width * side + height) // (2 * height)), side


def _family(mode: str) -> str:
    if mode in _GREY_MODES or mode.startswith("I;16"):
        return "grey"
    return "cmyk" if mode == "CMYK" else "rgb"


def _convert(img: Image.Image, mode: str) -> Image.Image:
    """``img`` in ``mode``, dropping its ICC profile if the colour space changes."""
    if img.mode == mode:
        return img
    out = img.convert(mode)
    if _family(img.mode) != _family(mode):
        out.info.pop("icc_profile", None)
    return out


def _working(img: Image.Image) -> Image.Image:
    """``img`` in L, LA, RGB or RGBA: the modes we scale and encode."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if mode == "CMYK":
        return _cmyk_to_rgb(img)
    if mode == "F":
        return _convert(img, "L")
    if mode == "I" or mode.startswith("I;16"):
        # Pillow clips to 0..255 when it converts to L; scale the 16-bit range down instead.
        wide = img.convert("I").point(lambda value: value / 257)
        wide.info = {k: v for k, v in img.info.items() if k != "transparency"}
        return _convert(wide, "L")
    alpha = mode in _ALPHA_MODES or "transparency" in img.info
    if _family(mode) == "grey":
        return _convert(img, "LA" if alpha else "L")
    return _convert(img, "RGBA" if alpha else "RGB")


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    """Convert CMYK through its ICC profile to sRGB when possible, else Pillow's plain way."""
    icc = img.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(img, profile, srgb, outputMode="RGB")
        except Exception:
            out = None
        if out is not None:
            out.info = {k: v for k, v in img.info.items() if k != "icc_profile"}
            return out
    return _convert(img, "RGB")


def _transparent(img: Image.Image) -> bool:
    """Whether a working-mode image shows any transparency."""
    if img.mode not in ("LA", "RGBA"):
        return False
    low = img.getchannel("A").getextrema()[0]
    assert isinstance(low, int)  # one band: (min, max)
    return low < 255


def _opaque(img: Image.Image) -> Image.Image:
    return _convert(img, {"LA": "L", "RGBA": "RGB"}.get(img.mode, img.mode))


def _scale(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return _working(img).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _shown(im: Image.Image) -> Image.Image:
    """The current frame as displayed (EXIF orientation applied), with display info only."""
    try:
        img = ImageOps.exif_transpose(im)
    except Exception:
        img = im.copy()  # unreadable orientation: show the pixels as stored
    img.info = {key: img.info[key] for key in _DISPLAY_INFO if key in img.info}
    if img.mode in _ALPHA_MODES:
        img.info.pop("transparency", None)  # the alpha channel already says it
    return img


def _decode_still(im: Image.Image, max_side: int | None) -> tuple[Image.Image, bool]:
    """The first frame as displayed, scaled down to ``max_side``; and whether it was."""
    target = _fit(im.size, max_side)
    swap = _orientation(im) in _SWAPPING_ORIENTATIONS
    im.seek(0)
    if target is not None and isinstance(im, JpegImagePlugin.JpegImageFile):
        im.draft(None, target)  # let libjpeg decode at 1/2, 1/4 or 1/8 scale if still >= target
    img = _shown(im)
    if target is None:
        return img, False
    return _scale(img, (target[1], target[0]) if swap else target), True


def _decode_frames(im: Image.Image, max_side: int) -> list[tuple[Image.Image, int]] | None:
    """Every frame as displayed and scaled, with its duration in ms; None when decoding
    them all would cost more than :data:`MAX_PIXELS` or :data:`_MAX_FRAMES`."""
    size = im.size
    target = _fit(size, max_side)
    if target is not None and _orientation(im) in _SWAPPING_ORIENTATIONS:
        target = target[1], target[0]
    frames: list[tuple[Image.Image, int]] = []
    spent = 0
    while True:
        try:
            im.seek(len(frames))
        except EOFError:
            break
        spent += size[0] * size[1]
        if im.size != size or spent > MAX_PIXELS or len(frames) >= _MAX_FRAMES:
            return None
        frame = _working(_shown(im))
        if target is not None:
            frame = _scale(frame, target)
        frames.append((frame, round(float(im.info.get("duration", 0)))))
    alpha = any(frame.mode in _ALPHA_MODES for frame, _ in frames)
    mode = "RGBA" if alpha else "RGB"
    return [(_convert(frame, mode), duration) for frame, duration in frames]


# ---------------------------------------------------------------------------- encoding


def _encode(img: Image.Image, fmt: str, **options: Any) -> Picture:
    icc = img.info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    if fmt == "JPEG":
        options.update(quality=_JPEG_QUALITY, optimize=True, progressive=True)
    elif fmt == "PNG":
        options.update(optimize=True)
    elif fmt == "WEBP" and not options.get("lossless"):
        options.update(quality=_WEBP_QUALITY)
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return Picture(out.getvalue(), _MEDIA_TYPES[fmt], img.width, img.height)


def _encode_full(img: Image.Image, fmt: str, data: bytes) -> Picture:
    """Encode the full still picture in ``fmt``, in a mode that format holds."""
    if fmt == "JPEG":
        return _encode(_opaque(_working(img)), fmt)
    if fmt == "PNG":
        return _encode(img if img.mode in _PNG_MODES else _working(img), fmt)
    if fmt == "GIF":
        return _encode(img if img.mode in _GIF_MODES else _working(img), fmt)
    work = _working(img)  # WebP holds RGB and RGBA only
    work = _convert(work, {"L": "RGB", "LA": "RGBA"}.get(work.mode, work.mode))
    return _encode(work, fmt, lossless=_webp_lossless(data))


def _thumbnail(img: Image.Image, side: int) -> Picture | None:
    target = _fit(img.size, side)
    if target is None:
        return None
    small = _scale(img, target)
    return _encode(small, "PNG") if _transparent(small) else _encode(_opaque(small), "JPEG")


def _prepare(im: Image.Image, data: bytes, max_side: int, thumb_side: int) -> PreparedImage:
    source = im.format or ""
    removed = _metadata_in(im, data)
    scaled = _fit(im.size, max_side) is not None
    if source in _ANIMATED_FORMATS and getattr(im, "is_animated", False):
        loop = im.info.get("loop")
        frames = _decode_frames(im, max_side)
        if frames is not None:
            first = frames[0][0]
            options: dict[str, Any] = {
                "save_all": True,
                "append_images": [frame for frame, _ in frames[1:]],
                "duration": [duration for _, duration in frames],
            }
            if loop is not None:
                options["loop"] = loop
            if source == "GIF" and first.mode == "RGBA":
                options["disposal"] = 2  # clear each frame: its transparent pixels stay clear
            if source == "WEBP":
                options["lossless"] = _webp_lossless(data)
            full = _encode(first, source, **options)
            return PreparedImage(full, _thumbnail(first, thumb_side), removed, scaled)
    img, scaled = _decode_still(im, max_side)
    if source in ("JPEG", "MPO"):
        fmt = "JPEG"
    elif source in ("PNG", "GIF", "WEBP"):
        fmt = source
    else:
        img = _working(img)
        fmt = "PNG" if _transparent(img) else "JPEG"
    full = _encode_full(img, fmt, data)
    return PreparedImage(full, _thumbnail(img, thumb_side), removed, scaled)


def _chunks(
    data: bytes, start: int, end: int, *, big_endian: bool = False
) -> Iterator[tuple[bytes, int, int]]:
    """The (kind, body start, body end) of each chunk between ``start`` and ``end``: RIFF
    chunks (WebP: little-endian length, then kind, padded to even) or PNG chunks
    (big-endian length, then kind, body and a 4-byte CRC)."""
    pos = start
    while pos + 8 <= end:
        if big_endian:
            (length,) = struct.unpack_from(">I", data, pos)
            kind = data[pos + 4 : pos + 8]
            after = pos + 12 + length
        else:
            kind = data[pos : pos + 4]
            (length,) = struct.unpack_from("<I", data, pos + 4)
            after = pos + 8 + length + (length & 1)
        yield kind, pos + 8, min(pos + 8 + length, end)
        pos = after


def _webp_lossless(data: bytes) -> bool:
    """Whether every picture in a WebP file is lossless (VP8L), read from its chunks."""
    kinds: set[bytes] = set()
    for fourcc, body, end in _chunks(data, 12, len(data)):
        if fourcc == b"ANMF":  # an animation frame: a 16-byte header, then its own chunks
            kinds.update(kind for kind, _, _ in _chunks(data, body + 16, end))
        else:
            kinds.add(fourcc)
    return b"VP8L" in kinds and b"VP8 " not in kinds
