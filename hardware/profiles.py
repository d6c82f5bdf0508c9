"""Printer profiles: paper width in dots and what the printer can do, from python-escpos' database.

python-escpos does not enforce its own profile flags (a profile without QR support still gets
`GS ( k`), so the flags are read here and acted on: no native QR -> image QR, no cutter -> no cut.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools

IMAGE_IMPLS = {"bitImageRaster": "bitImageRaster", "graphics": "graphics", "bitImageColumn": "bitImageColumn"}
COMMON_WIDTHS = (384, 512, 576)
DEFAULT_PROFILE = "TM-T20II"


@functools.lru_cache(maxsize=1)
def _profiles() -> dict:
    """python-escpos' capability profiles (imported late: the import writes a cache file)."""
    from escpos.capabilities import CAPABILITIES

    return CAPABILITIES["profiles"]


def profile_names() -> list[str]:
    """Names of every known printer profile."""
    return sorted(_profiles())


@dataclasses.dataclass(frozen=True)
class Profile:
    """What the encoder needs to know about a printer model."""

    name: str
    width: int
    native_qr: bool
    cut: bool
    impl: str = "bitImageRaster"

    def escpos_profile_data(self) -> dict:
        """python-escpos profile data with this profile's width (never mutates the shared copy)."""
        data = copy.deepcopy(_profiles()[self.name])
        data["media"]["width"]["pixels"] = self.width
        return data


def get_profile(name: str | None = None, *, width: int | None = None, qr: str | None = None,
                impl: str | None = None) -> Profile:
    """Build a profile from a model name plus overrides; ValueError names the bad part."""
    name = name or DEFAULT_PROFILE
    profiles = _profiles()
    if name not in profiles:
        close = difflib.get_close_matches(name, list(profiles), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see docs/printing.md for the list"
        raise ValueError(f"unknown printer profile {name!r}{hint}")
    data = profiles[name]
    known = data.get("media", {}).get("width", {}).get("pixels")
    known_width = known if isinstance(known, int) else None
    if width is None:
        if known_width is None:
            raise ValueError(
                f"printer profile {name!r} has no known paper width; add width=384, 512 or 576 "
                "(dots) to the printer URL"
            )
        width = known_width
    if not 128 <= width <= 2048:
        raise ValueError(f"paper width {width} dots is outside 128..2048")
    if known_width is not None and width > known_width:
        # Epson TM-T88 models reject an image wider than their 512 dots.
        raise ValueError(f"paper width {width} dots is wider than profile {name!r} allows ({known_width})")
    feats = data.get("features", {})
    if qr is None:
        native_qr = bool(feats.get("qrCode"))
    elif qr in ("native", "image"):
        native_qr = qr == "native"
    else:
        raise ValueError(f"qr={qr!r} must be 'native' or 'image'")
    impl = impl or "bitImageRaster"
    if impl not in IMAGE_IMPLS:
        raise ValueError(f"impl={impl!r} must be one of {', '.join(IMAGE_IMPLS)}")
    if feats.get(impl) is False:
        raise ValueError(f"printer profile {name!r} does not support impl={impl}")
    cut = bool(feats.get("paperFullCut") or feats.get("paperPartCut"))
    return Profile(name=name, width=width, native_qr=native_qr, cut=cut, impl=impl)
