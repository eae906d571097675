"""Read a QR code drawn as segno SVG back to its text (rasterised here, decoded by zxing-cpp)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import zxingcpp


def modules(svg: str) -> list[list[bool]]:
    """The dark modules of segno's path: an absolute M, then relative h runs and m moves."""
    root = ET.fromstring(svg)
    path = next(p for p in root.iter() if p.tag.endswith("path") and p.get("class") == "qrline")
    transform = next(
        (g.get("transform") for g in root.iter() if g.tag.endswith("g") and g.get("transform")),
        None,
    )
    d = path.get("d") or ""
    size = _size(root, transform)
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", d):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            for col in range(int(x), int(x + float(a))):
                grid[int(y)][col] = True
            x += float(a)
    return grid


def _size(root: ET.Element, transform: str | None) -> int:
    scale = float(re.search(r"scale\(([\d.]+)", transform).group(1)) if transform else 1.0
    view_box = root.get("viewBox")
    if view_box:
        return int(float(view_box.split()[2]))
    return int(float(root.get("width")) / scale)


def decode(svg: str, pixel: int = 4) -> list[str]:
    grid = modules(svg)
    width = len(grid) * pixel
    raster = bytearray()
    for row in grid:
        raster += b"".join((b"\x00" if dark else b"\xff") * pixel for dark in row) * pixel
    image = memoryview(bytes(raster)).cast("B", (width, width))
    return [code.text for code in zxingcpp.read_barcodes(image)]
