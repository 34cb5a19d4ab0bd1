#!/usr/bin/python3
"""Checks the HTML report of scripts/report.sh and Chromium's screenshot of it.

    report_check.py REPORT.html SCREENSHOT.png [--expect-blank CHART]

Prints one line per check, "ok - what" or "not ok - what: why", and exits 1 if any
failed. The checks: the file fetches nothing and runs no script; every chart's <svg> has
drawn marks; the screenshot has the page's size and is not blank; and in each chart's
box (its data-box, in page pixels) at least MIN_SHARE of the pixels are coloured. Axes,
grid lines and text are grey or black, so coloured pixels are the data's marks: a chart
that drew only its axes fails. With --expect-blank CHART (the test's control: that
chart's marks removed) CHART must fail the pixel check and every other chart pass.

Standard library only: the PNG is decoded here with zlib.
"""
import re
import struct
import sys
import zlib

MIN_SHARE = 0.02         # of a chart's box, coloured
COLOURED = 40            # max(r, g, b) - min(r, g, b) at least this: not grey, not text
MIN_MARKS = 5            # rect, polygon, polyline, circle per <svg>


def read_png(path):
    """(width, height, rows): rows[y] is a bytes object of RGB(A) samples, 8 bits each."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour}, "
                                 f"interlace {interlace})")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:      # Sub
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:    # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:    # Average
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:    # Paeth
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def coloured_share(rows, channels, x, y, w, h):
    coloured = 0
    for row in rows[y:y + h]:
        for i in range(x * channels, (x + w) * channels, channels):
            r, g, b = row[i], row[i + 1], row[i + 2]
            if max(r, g, b) - min(r, g, b) >= COLOURED:
                coloured += 1
    return coloured / (w * h)


def main(argv):
    html_path, png_path = argv[1], argv[2]
    expect_blank = argv[4] if len(argv) > 4 and argv[3] == "--expect-blank" else None
    results = []

    def check(ok, what, why=""):   # why: the figure behind the verdict, printed either way
        results.append(ok)
        print(f"ok - {what}" + (f" ({why})" if why else "") if ok else f"not ok - {what}: {why}")

    page = open(html_path, encoding="utf-8").read()
    if expect_blank is None:
        fetched = re.findall(r"<script|<link|<img|<iframe|\bsrc=|url\(|@import|https?://", page,
                             re.I)
        check(not fetched, "the report fetches nothing and runs no script",
              fetched and f"found {sorted(set(fetched))}")
    charts = re.findall(r'<svg id="chart-(\w+)" data-box="(\d+) (\d+) (\d+) (\d+)"(.*?)</svg>',
                        page, re.S)
    check(len(charts) == 6, "the report has six charts", len(charts) != 6 and f"found {len(charts)}")
    if expect_blank is None:
        for name, *_, body in charts:
            marks = len(re.findall(r"<(rect|polygon|polyline|circle)\b", body))
            check(marks >= MIN_MARKS, f"chart {name}: its svg has drawn marks",
                  f"{marks} marks")
    size = re.search(r"\.page \{ position: relative; width: (\d+)px; height: (\d+)px", page)
    try:
        width, height, channels, rows = read_png(png_path)
    except (OSError, ValueError, zlib.error) as e:
        check(False, "the screenshot is a PNG", str(e))
        return 1
    check(size is not None and (width, height) == (int(size[1]), int(size[2])),
          "the screenshot has the page's size",
          f"{width}x{height}, page {size and size.groups()}")
    if expect_blank is None:
        share = coloured_share(rows, channels, 0, 0, width, height)
        check(share >= MIN_SHARE, "the screenshot is not blank", f"{share:.2%} coloured")
    for name, x, y, w, h, _ in charts:
        x, y, w, h = int(x), int(y), int(w), int(h)
        if x + w > width or y + h > height:
            check(False, f"chart {name}: inside the screenshot", f"box {x} {y} {w} {h}")
            continue
        share = coloured_share(rows, channels, x, y, w, h)
        drew = share >= MIN_SHARE
        if name == expect_blank:
            check(not drew, f"chart {name} (marks removed): found blank",
                  f"{share:.2%} coloured")
        else:
            check(drew, f"chart {name}: drew", f"{share:.2%} of its box coloured, at least "
                                               f"{MIN_SHARE:.0%} needed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    sys.exit(main(sys.argv))
