#!/usr/bin/env python3
"""Draws the Kiyeovo app icon (three overlapping chat circles on a rounded square) as a
1024x1024 PNG with only the standard library. `npx tauri icon` turns it into the full icon set:

    python3 scripts/make-icon.py icons/source.png && (cd ui && npx tauri icon ../icons/source.png -o ../icons)
"""
import math
import struct
import sys
import zlib

N = 1024


def png(path, pixels):
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", N, N, 8, 6, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def coverage(d):
    """Anti-aliased inside test from a signed distance (negative = inside)."""
    return max(0.0, min(1.0, 0.5 - d))


def rounded_square(x, y, margin=64, radius=200):
    cx = min(max(x, margin + radius), N - margin - radius)
    cy = min(max(y, margin + radius), N - margin - radius)
    return math.hypot(x - cx, y - cy) - radius


CIRCLES = [(400, 430, 210), (624, 430, 210), (512, 630, 210)]
COLOURS = [(255, 209, 102), (6, 214, 160), (239, 71, 111)]


def main(path):
    rows = []
    for y in range(N):
        row = []
        for x in range(N):
            bg = coverage(rounded_square(x + 0.5, y + 0.5))
            t = y / N
            r, g, b = 30 + 20 * t, 40 + 30 * t, 90 + 60 * t
            a = bg
            for (cx, cy, rad), (cr, cg, cb) in zip(CIRCLES, COLOURS):
                c = coverage(math.hypot(x + 0.5 - cx, y + 0.5 - cy) - rad) * 0.78 * bg
                r, g, b = r * (1 - c) + cr * c, g * (1 - c) + cg * c, b * (1 - c) + cb * c
            row += [int(r), int(g), int(b), int(255 * a)]
        rows.append(row)
    png(path, rows)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "icons/source.png")
