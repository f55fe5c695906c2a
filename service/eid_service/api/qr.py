"""QR images of share tokens."""

from __future__ import annotations

import io

import segno


def _code(payload: str) -> segno.QRCode:
    # Error correction M survives a scratched phone screen.
    return segno.make(payload, error="m", micro=False)


def qr_png(payload: str) -> bytes:
    buffer = io.BytesIO()
    _code(payload).save(buffer, kind="png", scale=4, border=4)  # scale 4 keeps it small
    return buffer.getvalue()


def qr_svg(payload: str) -> bytes:
    buffer = io.BytesIO()
    _code(payload).save(buffer, kind="svg", scale=4, border=4, xmldecl=False)
    return buffer.getvalue()
