"""Checks a headless-browser screenshot of the report: the camera frames rendered (pixels of the
generated road's grey) and the SVG drawn over them (pixels of the lane overlay's yellow).
Prints a JSON summary; exits 1 when either is missing.

usage: check_screenshot.py SCREENSHOT.png
"""
import json
import sys

from PIL import Image


def near(pixel, target, tolerance=18):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, target))


def main():
    image = Image.open(sys.argv[1]).convert("RGB")
    pixels = [image.getpixel((x, y)) for y in range(0, image.height, 2) for x in range(0, image.width, 2)]
    road = sum(near(p, (88, 90, 96)) for p in pixels)
    lanes = sum(near(p, (242, 212, 61), 30) for p in pixels)
    summary = {"size": image.size, "road_pixels": road, "lane_overlay_pixels": lanes}
    print(json.dumps(summary))
    return 0 if road > 250 and lanes > 25 else 1


if __name__ == "__main__":
    sys.exit(main())
