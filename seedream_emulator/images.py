"""Real image bytes for the emulator: generated results, sample inputs, and format sniffing.

Why real bytes: a client that downloads results, checks content types or streams large bodies in chunks must be
tested against something that behaves like the real tempfile host. Pillow (optional) gives PNG, JPEG and WebP;
without it a small zlib-based PNG writer keeps PNG working so the emulator never needs a third-party package.

The pictures are deliberately not trivial: a two-colour gradient, shapes placed from the prompt hash and a layer
of low-amplitude noise, so that PNG cannot compress them to nothing and a full-size 4K result is several MB.
"""

from __future__ import annotations

import functools
import hashlib
import random
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

#: Output format name -> MIME type (format names as used by the ``format=`` directive).
MIME_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
#: Output format name -> file extension used in result URLs.
EXTENSIONS: dict[str, str] = {"png": "png", "jpeg": "jpg", "webp": "webp"}
#: Default pixel reduction applied to results unless ``full_size`` is set (speed: a 4K PNG takes seconds).
DOWNSCALE = 4


@functools.cache
def pillow_available() -> bool:
    """Tell whether Pillow can be imported (checked lazily, so the emulator starts without it)."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def supported_formats() -> tuple[str, ...]:
    """Return the output formats this process can encode (PNG always; JPEG/WebP need Pillow)."""
    if not pillow_available():
        return ("png",)
    from PIL import features

    formats = ["png", "jpeg"]
    if features.check("webp"):
        formats.append("webp")
    return tuple(formats)


def sniff_mime(data: bytes) -> str | None:
    """Identify an image by its magic bytes; the upload and input checks trust content, not declared types."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data.startswith(b"BM"):
        return "image/bmp"
    return None


def ratio_size(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    """Return (width, height) with the given long side and aspect ratio such as ``"16:9"``."""
    a, b = (int(part) for part in aspect_ratio.split(":"))
    if a >= b:
        return long_side, max(1, round(long_side * b / a))
    return max(1, round(long_side * a / b)), long_side


def result_size(aspect_ratio: str, long_side: int, full_size: bool) -> tuple[int, int]:
    """Return the pixel size of a result: the model's long side (``models``), divided by DOWNSCALE unless full size."""
    if not full_size:
        long_side //= DOWNSCALE
    return ratio_size(aspect_ratio, long_side)


def seed_from_text(text: str) -> int:
    """Derive a stable 64-bit seed from text (the prompt), so equal prompts give equal pictures."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def variant_seed(seed: int, index: int) -> int:
    """Return the seed of the ``index``-th image of a task whose first image has ``seed`` (index 0: ``seed`` itself).

    Why: a task asked for several images (Seedream 4.0 ``max_images``) must serve different pictures, as a model
    would, and a client that stores them must not be able to pass by writing one picture N times.
    """
    if index == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}/{index}".encode()).digest()[:8], "big")


def render(seed: int, width: int, height: int, fmt: str) -> bytes:
    """Render a result picture and encode it as ``fmt`` (png/jpeg/webp)."""
    if pillow_available():
        return _encode(_pillow_picture(seed, width, height), fmt)
    if fmt != "png":
        raise RuntimeError(f"format {fmt!r} needs Pillow, which is not installed")
    return _fallback_png(seed, width, height)


# --------------------------------------------------------------------------- Pillow path


def _palette(rnd: random.Random) -> list[tuple[int, int, int]]:
    return [(rnd.randrange(40, 230), rnd.randrange(40, 230), rnd.randrange(40, 230)) for _ in range(6)]


def _gradient(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Any:
    from PIL import Image

    mask = Image.linear_gradient("L").resize((width, height))
    return Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask)


def _noise(rnd: random.Random, width: int, height: int, amplitude_bits: int) -> Any:
    """Deterministic low-amplitude grey noise; it is what keeps PNG from compressing the picture away."""
    from PIL import Image

    mask = (1 << amplitude_bits) - 1
    noise = Image.frombytes("L", (width, height), rnd.randbytes(width * height)).point([v & mask for v in range(256)])
    return Image.merge("RGB", (noise, noise, noise))


def _pillow_picture(seed: int, width: int, height: int) -> Any:
    from PIL import ImageChops, ImageDraw

    rnd = random.Random(seed)
    colors = _palette(rnd)
    picture = _gradient(width, height, colors[0], colors[1])
    draw = ImageDraw.Draw(picture)
    unit = max(1, min(width, height) // 16)
    for i in range(14):
        x0, y0 = rnd.randrange(width), rnd.randrange(height)
        x1, y1 = x0 + rnd.randrange(unit, unit * 6), y0 + rnd.randrange(unit, unit * 6)
        color = colors[2 + i % 4]
        if i % 2:
            draw.ellipse((x0, y0, x1, y1), fill=color, outline=colors[0], width=max(1, unit // 4))
        else:
            draw.rectangle((x0, y0, x1, y1), fill=color, outline=colors[1], width=max(1, unit // 4))
    step = max(4, unit)
    for x in range(rnd.randrange(step), width, step * 3):
        draw.line((x, 0, x + height // 3, height), fill=colors[5], width=max(1, unit // 8))
    return ImageChops.add(picture, _noise(rnd, width, height, 2))


def _encode(picture: Any, fmt: str) -> bytes:
    out = BytesIO()
    if fmt == "png":
        # Level 1: several times faster than the default, and the files stay realistically large.
        picture.save(out, "PNG", compress_level=1)
    elif fmt == "jpeg":
        picture.save(out, "JPEG", quality=90)
    elif fmt == "webp":
        picture.save(out, "WEBP", quality=85, method=0)
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return out.getvalue()


# --------------------------------------------------------------------------- stdlib-only PNG path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png_rgb(width: int, height: int, rows: Callable[[int], bytes]) -> bytes:
    """Write an 8-bit RGB PNG from a function giving each row's ``3 * width`` bytes (filter type 0)."""
    compressor = zlib.compressobj(1)
    parts = [compressor.compress(b"\x00" + rows(y)) for y in range(height)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def _fallback_png(seed: int, width: int, height: int) -> bytes:
    """Gradient + rectangles + noise using only byte-level operations that run at C speed."""
    rnd = random.Random(seed)
    colors = _palette(rnd)
    base = bytes(
        channel
        for x in range(width)
        for channel in (
            colors[0][0] * (width - x) // width + colors[1][0] * x // width,
            colors[0][1],
            colors[0][2] * x // width + colors[1][2] * (width - x) // width,
        )
    )
    shift_tables = [bytes((v + s) & 0xFF for v in range(256)) for s in range(0, 256, 2)]
    noise_mask = bytes(v & 1 for v in range(256))
    noise_rows = [rnd.randbytes(width * 3).translate(noise_mask) for _ in range(61)]
    boxes = []
    for i in range(8):
        x0, y0 = rnd.randrange(width), rnd.randrange(height)
        boxes.append((x0, y0, min(width, x0 + width // 6), min(height, y0 + height // 6), bytes(colors[2 + i % 4])))

    def row(y: int) -> bytes:
        line = bytearray(base.translate(shift_tables[(y * 128 // max(1, height)) % len(shift_tables)]))
        for x0, y0, x1, y1, color in boxes:
            if y0 <= y < y1:
                line[x0 * 3 : x1 * 3] = color * (x1 - x0)
        noisy = int.from_bytes(line, "big") ^ int.from_bytes(noise_rows[y % len(noise_rows)], "big")
        return noisy.to_bytes(len(line), "big")

    return encode_png_rgb(width, height, row)


# --------------------------------------------------------------------------- sample inputs


@dataclass(frozen=True)
class Sample:
    """A product-photo-like input image the emulator serves under ``/samples/<name>``."""

    name: str
    aspect_ratio: str
    fmt: str
    product: str
    long_side: int = 1024

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.fmt]

    @property
    def size(self) -> tuple[int, int]:
        return ratio_size(self.aspect_ratio, self.long_side)


SAMPLES: tuple[Sample, ...] = (
    Sample("sneaker-1x1.png", "1:1", "png", "sneaker"),
    Sample("perfume-3x4.jpg", "3:4", "jpeg", "bottle"),
    Sample("headphones-16x9.webp", "16:9", "webp", "headphones"),
    Sample("mug-4x3.png", "4:3", "png", "mug"),
    Sample("lamp-9x16.jpg", "9:16", "jpeg", "lamp"),
)


def available_samples() -> tuple[Sample, ...]:
    """Return the samples this process can encode (only the PNG ones without Pillow)."""
    formats = supported_formats()
    return tuple(sample for sample in SAMPLES if sample.fmt in formats)


def find_sample(name: str) -> Sample | None:
    """Return the sample called ``name`` if this process can serve it."""
    return next((sample for sample in available_samples() if sample.name == name), None)


def render_sample(sample: Sample) -> bytes:
    """Draw a studio-style product shot: soft backdrop, floor shadow, a simple product silhouette."""
    width, height = sample.size
    if not pillow_available():
        return _fallback_png(seed_from_text(sample.name), width, height)
    from PIL import ImageChops, ImageDraw

    rnd = random.Random(seed_from_text(sample.name))
    body = (rnd.randrange(30, 200), rnd.randrange(30, 200), rnd.randrange(30, 200))
    accent = tuple(min(255, c + 60) for c in body)
    picture = _gradient(width, height, (236, 234, 230), (196, 192, 186))
    draw = ImageDraw.Draw(picture)
    cx, floor, unit = width // 2, int(height * 0.78), min(width, height) // 10
    draw.ellipse((cx - 3 * unit, floor - unit // 3, cx + 3 * unit, floor + unit // 3), fill=(150, 146, 140))
    _draw_product(draw, sample.product, cx, floor, unit, body, accent)
    return _encode(ImageChops.add(picture, _noise(rnd, width, height, 1)), sample.fmt)


def _draw_product(draw: Any, product: str, cx: int, floor: int, u: int, body: Any, accent: Any) -> None:
    if product == "sneaker":
        draw.rounded_rectangle((cx - 3 * u, floor - 2 * u, cx + 3 * u, floor), radius=u, fill=body)
        draw.rectangle((cx - 3 * u, floor - u // 2, cx + 3 * u, floor), fill=(245, 245, 245))
        draw.ellipse((cx - 2 * u, floor - 3 * u, cx + u, floor - u), fill=body)
    elif product == "bottle":
        draw.rounded_rectangle((cx - 2 * u, floor - 5 * u, cx + 2 * u, floor), radius=u // 2, fill=body)
        draw.rectangle((cx - u // 2, floor - 6 * u, cx + u // 2, floor - 5 * u), fill=accent)
        draw.rectangle((cx - u, floor - 7 * u, cx + u, floor - 6 * u), fill=(40, 40, 40))
    elif product == "headphones":
        draw.arc((cx - 3 * u, floor - 6 * u, cx + 3 * u, floor), 180, 360, fill=body, width=u // 2)
        draw.rounded_rectangle((cx - 3 * u - u // 2, floor - 3 * u, cx - 2 * u, floor - u), radius=u // 3, fill=accent)
        draw.rounded_rectangle((cx + 2 * u, floor - 3 * u, cx + 3 * u + u // 2, floor - u), radius=u // 3, fill=accent)
    elif product == "mug":
        draw.rounded_rectangle((cx - 2 * u, floor - 4 * u, cx + 2 * u, floor), radius=u // 3, fill=body)
        draw.ellipse((cx + u, floor - 3 * u, cx + 3 * u, floor - u), outline=body, width=u // 2)
    else:  # lamp
        draw.polygon(
            [
                (cx - 2 * u, floor - 5 * u),
                (cx + 2 * u, floor - 5 * u),
                (cx + u, floor - 8 * u),
                (cx - u, floor - 8 * u),
            ],
            fill=accent,
        )
        draw.rectangle((cx - u // 6, floor - 5 * u, cx + u // 6, floor), fill=body)
        draw.ellipse((cx - u, floor - u // 3, cx + u, floor + u // 6), fill=body)


# --------------------------------------------------------------------------- cache


class ImageCache:
    """Byte-bounded LRU cache of encoded images, with one renderer per key.

    Why the in-flight table: a burst of clients downloading the same new result must not render it N times
    in parallel (a full-size 4K render takes seconds and a lot of memory).
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._size = 0
        self._in_flight: dict[tuple[Any, ...], threading.Event] = {}

    def get(self, key: tuple[Any, ...], factory: Callable[[], bytes]) -> bytes:
        """Return the cached bytes for ``key``, rendering them once with ``factory`` if needed."""
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                pending = self._in_flight.get(key)
                if pending is None:
                    pending = self._in_flight[key] = threading.Event()
                    break
            pending.wait()
        try:
            data = factory()
            self._store(key, data)
            return data
        finally:
            with self._lock:
                self._in_flight.pop(key, None)
            pending.set()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def _store(self, key: tuple[Any, ...], data: bytes) -> None:
        with self._lock:
            self._items[key] = data
            self._size += len(data)
            while self._size > self._max_bytes and len(self._items) > 1:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)

    def clear(self) -> None:
        """Drop every cached image."""
        with self._lock:
            self._items.clear()
            self._size = 0
