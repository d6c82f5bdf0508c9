"""A small ESC/POS decoder for tests: job bytes back to images, QR payloads, text and cuts.

It understands what the kiosk and python-escpos emit (ESC @, ESC a, ESC t, ESC d, ESC J, ESC E,
ESC !, GS !, ESC 2/3, GS v 0, GS ( L, ESC *, GS ( k, GS V, DLE EOT, text) and raises DecodeError on
anything else, so a new command in a job is noticed instead of silently skipped.
"""

from __future__ import annotations

import dataclasses

from PIL import Image

ESC, GS, DLE, LF, CR = 0x1B, 0x1D, 0x10, 0x0A, 0x0D
_INVERT = bytes(255 - i for i in range(256))


class DecodeError(ValueError):
    """The bytes are not a job this decoder understands."""


@dataclasses.dataclass
class Event:
    """One decoded command: `kind` plus its parameters."""

    kind: str
    offset: int
    args: dict = dataclasses.field(default_factory=dict)

    def __getattr__(self, name):
        """Parameters read as attributes (event.image, event.payload ...)."""
        try:
            return self.__dict__["args"][name]
        except KeyError:
            raise AttributeError(name) from None


@dataclasses.dataclass
class DecodedJob:
    """The events of a job, with helpers for the assertions tests make."""

    events: list[Event]

    @property
    def kinds(self) -> list[str]:
        """Event kinds in order."""
        return [e.kind for e in self.events]

    @property
    def images(self) -> list[Image.Image]:
        """Every printed raster image (GS v 0, GS ( L, ESC * stripes), top to bottom."""
        return [e.image for e in self.events if e.kind == "image"]

    @property
    def qr_codes(self) -> list[Event]:
        """Every native QR printed (payload, model, module_size, ec)."""
        return [e for e in self.events if e.kind == "qr"]

    @property
    def cuts(self) -> list[Event]:
        """Every cut."""
        return [e for e in self.events if e.kind == "cut"]

    def raster(self) -> Image.Image:
        """All raster images stacked top to bottom (mode "1", black = 0)."""
        images = self.images
        if not images:
            raise DecodeError("the job prints no image")
        width = max(im.width for im in images)
        out = Image.new("1", (width, sum(im.height for im in images)), 1)
        y = 0
        for im in images:
            out.paste(im, (0, y))
            y += im.height
        return out


def decode(data: bytes) -> DecodedJob:
    """Decode a whole job; DecodeError names the offset of the first byte not understood."""
    return DecodedJob(list(_events(bytes(data))))


def _need(data: bytes, pos: int, n: int, what: str) -> bytes:
    """The next n bytes, or DecodeError when the job ends early."""
    if pos + n > len(data):
        raise DecodeError(f"job ends inside {what} at offset {pos}")
    return data[pos:pos + n]


def _raster_image(width_dots: int, height: int, body: bytes) -> Image.Image:
    """A 1-bit image from ESC/POS raster data (bit 1 = black) as PIL mode "1" (0 = black)."""
    return Image.frombytes("1", (width_dots, height), body.translate(_INVERT))


def _column_image(width: int, body: bytes, rows: int) -> Image.Image:
    """A stripe from ESC * column data: `rows // 8` bytes per column, top bit first."""
    per_col = rows // 8
    img = Image.new("1", (width, rows), 1)
    px = img.load()
    for x in range(width):
        col = body[x * per_col:(x + 1) * per_col]
        for byte_index, byte in enumerate(col):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    px[x, byte_index * 8 + bit] = 0
    return img


def _events(data: bytes):
    """Yield events for the whole job."""
    pos = 0
    codepage = 0
    stored_graphic = None
    qr: dict = {}
    text_start = None
    while pos < len(data):
        b = data[pos]
        printable = b >= 0x20 and b != 0x7F
        if printable:
            if text_start is None:
                text_start = pos
            pos += 1
            continue
        if text_start is not None:
            raw = data[text_start:pos]
            yield Event("text", text_start, {"text": raw.decode("cp437" if codepage == 0 else "latin-1"), "raw": raw})
            text_start = None
        start = pos
        if b == LF:
            yield Event("lf", start)
            pos += 1
        elif b == CR:
            pos += 1
        elif b == DLE:
            cmd = _need(data, pos, 3, "DLE EOT")
            if cmd[1] != 0x04:
                raise DecodeError(f"unknown DLE command 0x{cmd[1]:02x} at offset {pos}")
            yield Event("status_query", start, {"n": cmd[2]})
            pos += 3
        elif b == ESC:
            op = _need(data, pos, 2, "ESC command")[1]
            pos += 2
            if op == ord("@"):
                yield Event("init", start)
            elif op in (ord("a"), ord("t"), ord("d"), ord("J"), ord("E"), ord("!"), ord("-"), ord("M"), ord("3")):
                n = _need(data, pos, 1, f"ESC {chr(op)}")[0]
                pos += 1
                kind = {"a": "align", "t": "codepage", "d": "feed_lines", "J": "feed_dots", "E": "bold",
                        "!": "print_mode", "-": "underline", "M": "font", "3": "line_spacing"}[chr(op)]
                if kind == "codepage":
                    codepage = n
                yield Event(kind, start, {"n": n})
            elif op == ord("2"):
                yield Event("line_spacing", start, {"n": None})
            elif op == ord("p"):
                m, t1, t2 = _need(data, pos, 3, "ESC p")
                pos += 3
                yield Event("drawer", start, {"pin": m, "t1": t1, "t2": t2})
            elif op == ord("*"):
                m, nl, nh = _need(data, pos, 3, "ESC *")
                pos += 3
                width = nl | nh << 8
                rows = 24 if m in (32, 33) else 8
                body = _need(data, pos, width * rows // 8, "ESC * data")
                pos += len(body)
                yield Event("image", start, {"image": _column_image(width, body, rows), "impl": "bitImageColumn"})
            else:
                raise DecodeError(f"unknown command ESC 0x{op:02x} at offset {start}")
        elif b == GS:
            op = _need(data, pos, 2, "GS command")[1]
            pos += 2
            if op == ord("v"):
                head = _need(data, pos, 6, "GS v 0 header")
                if head[0] != ord("0"):
                    raise DecodeError(f"unknown GS v variant at offset {start}")
                x = head[2] | head[3] << 8
                y = head[4] | head[5] << 8
                pos += 6
                body = _need(data, pos, x * y, "GS v 0 data")
                pos += len(body)
                yield Event("image", start, {"image": _raster_image(x * 8, y, body), "impl": "bitImageRaster",
                                             "density": head[1]})
            elif op == ord("V"):
                m = _need(data, pos, 1, "GS V")[0]
                pos += 1
                feed = None
                if m in (65, 66):
                    feed = _need(data, pos, 1, "GS V n")[0]
                    pos += 1
                elif m not in (0, 1, 48, 49):
                    raise DecodeError(f"unknown cut mode {m} at offset {start}")
                yield Event("cut", start, {"mode": "full" if m in (0, 48, 65) else "partial", "feed": feed})
            elif op == ord("!"):
                yield Event("char_size", start, {"n": _need(data, pos, 1, "GS !")[0]})
                pos += 1
            elif op == ord("("):
                sub, pl, ph = _need(data, pos, 3, "GS ( header")
                pos += 3
                body = _need(data, pos, pl | ph << 8, f"GS ( {chr(sub)} data")
                pos += len(body)
                if sub == ord("L"):
                    fn = body[1]
                    if fn == 112:
                        bx, by, c = body[3], body[4], body[5]
                        x = body[6] | body[7] << 8
                        y = body[8] | body[9] << 8
                        raster = body[10:]
                        if c != 49 or len(raster) != (x + 7) // 8 * y:
                            raise DecodeError(f"malformed GS ( L graphics at offset {start}")
                        stored_graphic = _raster_image((x + 7) // 8 * 8, y, raster).crop((0, 0, x, y))
                        stored_graphic.info["scale"] = (bx, by)
                    elif fn == 50:
                        if stored_graphic is None:
                            raise DecodeError(f"GS ( L print without stored graphics at offset {start}")
                        yield Event("image", start, {"image": stored_graphic, "impl": "graphics"})
                        stored_graphic = None
                    else:
                        raise DecodeError(f"unknown GS ( L function {fn} at offset {start}")
                elif sub == ord("k"):
                    cn, fn = body[0], body[1]
                    if cn != 49:
                        raise DecodeError(f"2-D code type {cn} is not QR at offset {start}")
                    if fn == 65:
                        qr["model"] = body[2] - 48
                    elif fn == 67:
                        qr["module_size"] = body[2]
                    elif fn == 69:
                        qr["ec"] = "LMQH"[body[2] - 48]
                    elif fn == 80:
                        qr["payload"] = body[3:].decode("utf-8")
                    elif fn == 81:
                        if "payload" not in qr:
                            raise DecodeError(f"QR print without stored data at offset {start}")
                        yield Event("qr", start, dict(qr))
                        qr = {}
                    else:
                        raise DecodeError(f"unknown GS ( k function {fn} at offset {start}")
                else:
                    raise DecodeError(f"unknown GS ( {chr(sub)} at offset {start}")
            else:
                raise DecodeError(f"unknown command GS 0x{op:02x} at offset {start}")
        else:
            raise DecodeError(f"unknown control byte 0x{b:02x} at offset {pos}")
    if text_start is not None:
        raw = data[text_start:]
        yield Event("text", text_start, {"text": raw.decode("cp437" if codepage == 0 else "latin-1"), "raw": raw})
