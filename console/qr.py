"""The activation code as an SVG QR code the phone app scans (segno: pure Python)."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str, *, title: str, scale: int = 6) -> Markup:
    """An inline SVG QR code of `text` with an accessible title.

    Error correction M survives a smudged printout; the quiet zone (border 4) is the
    standard one, so phone scanners find the code on a white slip.
    """
    code = segno.make(text, error="m", micro=False)
    svg = code.svg_inline(scale=scale, border=4, title=title, dark="#000", light="#fff")
    svg = svg.replace("<svg ", '<svg role="img" aria-label="' + _attr(title) + '" ', 1)
    return Markup(svg)


def _attr(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
