"""QR images of share tokens."""

from __future__ import annotations

import io

import segno


def qr_png(payload: str) -> bytes:
    # Error correction M survives a scratched phone screen; scale 4 keeps it small.
    code = segno.make(payload, error="m", micro=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=4, border=4)
    return buffer.getvalue()
