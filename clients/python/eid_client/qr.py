"""QR images of share payloads: drawn here with segno, read back with zxing-cpp.

Drawing on the client keeps images off the wire (ShareViaQR sends one only when
asked, and drawing it is the slow part of the call). Payloads are drawn at
error-correction level M, never as Micro QR codes (which many phone scanners
cannot read); an offline payload is Base45, which segno encodes in QR
alphanumeric mode on its own.
"""

from __future__ import annotations

import io
from pathlib import Path

import segno

from eid_client._files import write_atomically

ERROR_LEVEL = "m"
IMAGE_KINDS = ("png", "svg")
# What phones, cameras, scanners and screenshots write (JPEG includes the MPO
# files of some phones). Not every format Pillow opens: it renders EPS by running
# Ghostscript on the file, and each of its rarer parsers is more attack surface.
READ_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")


class QrImageError(ValueError):
    """An image that cannot be read, or holds no QR code."""


def make(payload: str) -> segno.QRCode:
    """The QR code of ``payload``, at level M or higher when that fits in the same size."""
    return segno.make_qr(payload, error=ERROR_LEVEL)


def write_image(payload: str, path: Path, kind: str = "png", *, scale: int = 5) -> None:
    """Draw ``payload`` into ``path`` as a PNG or SVG image (``scale`` pixels per module),
    readable by its owner only, written atomically (see _files.write_atomically)."""
    if kind not in IMAGE_KINDS:
        raise ValueError(f"unknown image kind {kind!r}: use png or svg")
    image = io.BytesIO()
    make(payload).save(image, kind=kind, scale=scale, border=4)
    # 0600: a share's image is a bearer token (an offline one holds personal data).
    write_atomically(path, image.getvalue(), 0o600)


def read_payloads(path: Path) -> list[str]:
    """The text of every QR code zxing-cpp finds in the image at ``path``
    (PNG, JPEG, ...: :data:`READ_FORMATS`). Raises :class:`QrImageError` when the
    file is not an image of those formats; an image without a QR code gives ``[]``."""
    # Imported here: only the verifying commands need the decoder and Pillow.
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=READ_FORMATS) as image:
            # Grey levels: zxing-cpp takes 8-bit images; a 1-bit or palette PNG is not one.
            grey = image.convert("L")
    except FileNotFoundError:
        raise
    except UnidentifiedImageError:
        raise QrImageError(f"{path}: not an image Pillow can read") from None
    except Image.DecompressionBombError:
        raise QrImageError(f"{path}: too many pixels to be a photo of a QR code") from None
    except (OSError, ValueError) as e:  # truncated or damaged image data
        # Pillow raises ValueError too (bad PPM headers, PNG text chunks inflating
        # past its limit), which callers catching QrImageError would not expect.
        raise QrImageError(f"{path}: cannot read the image ({e.__class__.__name__})") from None
    found = zxingcpp.read_barcodes(
        grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    return [code.text for code in found if code.valid]
