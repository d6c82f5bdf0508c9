"""Printer URLs: one string per printer says how to reach it and which model it is.

    preview://                                   PNG + PDF files (the default)
    escpos+tcp://HOST[:9100]?profile=TM-T20II&timeout=3
    escpos+usb://04b8:0e15?profile=TM-T20II&in_ep=0x82&out_ep=0x01
    escpos+serial:///dev/ttyUSB0?baudrate=19200
    escpos+file:///dev/usb/lp0
    cups://QUEUE   or   cups://HOST[:631]/QUEUE

Every bad part raises ValueError naming it; a URL's secrets never appear in messages or status.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import urllib.parse
from typing import Callable

from hardware.profiles import Profile, get_profile
from hardware.transports import (
    CupsTransport,
    FileTransport,
    NetworkTransport,
    PreviewTransport,
    SerialTransport,
    Transport,
    UsbTransport,
)

SCHEMES = ("preview", "escpos+tcp", "escpos+usb", "escpos+serial", "escpos+file", "cups")
_COMMON = {"profile", "width", "qr", "impl"}
_PARAMS = {
    "preview": _COMMON | {"keep"},
    "escpos+tcp": _COMMON | {"timeout", "status"},
    "escpos+usb": _COMMON | {"timeout", "status", "in_ep", "out_ep"},
    "escpos+serial": _COMMON | {"timeout", "status", "baudrate", "rtscts", "xonxoff"},
    "escpos+file": _COMMON | {"timeout"},
    "cups": _COMMON,
}
_TRANSPORTS = {"preview": PreviewTransport, "escpos+tcp": NetworkTransport, "escpos+usb": UsbTransport,
               "escpos+serial": SerialTransport, "escpos+file": FileTransport, "cups": CupsTransport}
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,127}$")
_HEX_ID = re.compile(r"^[0-9a-fA-F]{4}$")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclasses.dataclass(frozen=True)
class PrinterConfig:
    """A parsed printer URL: the scheme, where the printer is, its profile and its options."""

    scheme: str
    target: str
    profile: Profile
    options: dict
    display_url: str
    host: str | None = None
    port: int | None = None

    @property
    def kind(self) -> str:
        """The transport kind (preview, tcp, usb, serial, file, cups), known without opening it."""
        return _TRANSPORTS[self.scheme].kind

    def open(self, data_dir: pathlib.Path, *, now: Callable | None = None) -> Transport:
        """Create the transport (no device is touched until the first job or status check)."""
        o = self.options
        if self.scheme == "preview":
            return PreviewTransport(pathlib.Path(data_dir) / "prints", keep=o["keep"], now=now)
        if self.scheme == "escpos+tcp":
            return NetworkTransport(self.host, self.port, timeout=o["timeout"], check_status=o["status"])
        if self.scheme == "escpos+usb":
            vendor, product = (int(x, 16) for x in self.target.split(":"))
            return UsbTransport(vendor, product, in_ep=o["in_ep"], out_ep=o["out_ep"], timeout=o["timeout"],
                                check_status=o["status"])
        if self.scheme == "escpos+serial":
            return SerialTransport(self.target, baudrate=o["baudrate"], timeout=o["timeout"], check_status=o["status"],
                                   rtscts=o["rtscts"], xonxoff=o["xonxoff"])
        if self.scheme == "escpos+file":
            return FileTransport(self.target, timeout=o["timeout"])
        return CupsTransport(self.target, host=self.host, port=self.port)


def redact(url: str) -> str:
    """The URL with any password replaced, safe for logs and status pages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable printer URL>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password is not None else f"{user}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _bad(url: str, what: str) -> ValueError:
    """A ValueError naming the bad part of a (redacted) printer URL."""
    return ValueError(f"printer URL {redact(url)!r}: {what}")


def _number(url: str, name: str, raw: str, kind: type, low: float, high: float):
    """Parse a numeric option within bounds."""
    try:
        value = kind(raw, 0) if kind is int and raw.lower().startswith("0x") else kind(raw)
    except ValueError:
        raise _bad(url, f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise _bad(url, f"{name}={raw} is outside {low:g}..{high:g}")
    return value


def _flag(url: str, name: str, raw: str) -> bool:
    """Parse an on/off option."""
    value = raw.lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise _bad(url, f"{name}={raw!r} must be on or off")


def parse_printer_url(url: str | None) -> PrinterConfig:
    """Parse and validate a printer URL; None or "" means preview://."""
    url = (url or "").strip() or "preview://"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _bad(url, f"unknown scheme {parts.scheme + '://' if parts.scheme else '(none)'}; use one of "
                        + ", ".join(s + "://" for s in SCHEMES))
    if scheme in ("escpos+tcp", "cups"):
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError:
            raise _bad(url, f"port in {parts.netloc!r} must be a number in 1..65535") from None
    if parts.username is not None or parts.password is not None:
        raise _bad(url, "credentials in printer URLs are not supported (allow the kiosk host in cupsd.conf instead)")
    if parts.fragment:
        raise _bad(url, f"unexpected fragment #{parts.fragment}")
    query: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in _PARAMS[scheme]:
            raise _bad(url, f"unknown option {key!r} for {scheme}://; allowed: {', '.join(sorted(_PARAMS[scheme]))}")
        if key in query:
            raise _bad(url, f"option {key!r} given twice")
        query[key] = value

    width = _number(url, "width", query["width"], int, 128, 2048) if "width" in query else None
    try:
        profile = get_profile(query.get("profile"), width=width, qr=query.get("qr"), impl=query.get("impl"))
    except ValueError as exc:
        raise _bad(url, str(exc)) from None

    options: dict = {}
    if "timeout" in _PARAMS[scheme]:
        options["timeout"] = _number(url, "timeout", query.get("timeout", "3"), float, 0.05, 120)
    if "status" in _PARAMS[scheme]:
        options["status"] = _flag(url, "status", query.get("status", "on"))
    host = port = None
    netloc, path = parts.netloc, parts.path

    if scheme == "preview":
        if netloc or path.strip("/"):
            raise _bad(url, "preview:// takes no host or path (files go to DATA_DIR/prints/)")
        options["keep"] = _number(url, "keep", query.get("keep", "1000"), int, 1, 1_000_000)
        target = ""
    elif scheme == "escpos+tcp":
        if not parts.hostname:
            raise _bad(url, "missing printer host, e.g. escpos+tcp://10.0.0.5:9100")
        if path.strip("/"):
            raise _bad(url, f"unexpected path {path!r} after the host")
        host, port = parts.hostname, 9100 if parts.port is None else parts.port
        if port == 0:
            raise _bad(url, "port 0 is not a printer port")
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    elif scheme == "escpos+usb":
        ids = netloc.split(":")
        if len(ids) != 2 or not all(_HEX_ID.match(i) for i in ids) or path.strip("/"):
            raise _bad(url, f"USB ids {netloc + path!r} must be VENDOR:PRODUCT in hex, e.g. escpos+usb://04b8:0e15")
        target = netloc.lower()
        options["in_ep"] = _number(url, "in_ep", query.get("in_ep", "0x82"), int, 0x81, 0x8F)
        options["out_ep"] = _number(url, "out_ep", query.get("out_ep", "0x01"), int, 0x01, 0x0F)
    elif scheme in ("escpos+serial", "escpos+file"):
        if netloc:
            raise _bad(url, f"{scheme}:// takes a device path with three slashes, e.g. {scheme}:///dev/ttyUSB0")
        if not path.startswith("/") or path.endswith("/"):
            raise _bad(url, f"device path {path!r} must be an absolute path to a device")
        target = urllib.parse.unquote(path)
        if scheme == "escpos+serial":
            baud = _number(url, "baudrate", query.get("baudrate", "9600"), int, 300, 921600)
            if baud not in BAUD_RATES:
                raise _bad(url, f"baudrate={baud} is not one of {', '.join(map(str, BAUD_RATES))}")
            options["baudrate"] = baud
            options["rtscts"] = _flag(url, "rtscts", query.get("rtscts", "off"))
            options["xonxoff"] = _flag(url, "xonxoff", query.get("xonxoff", "off"))
    else:  # cups
        if path.strip("/"):
            if not parts.hostname:
                raise _bad(url, "missing CUPS host before the queue name")
            host, port, target = parts.hostname, 631 if parts.port is None else parts.port, path.strip("/")
            if port == 0:
                raise _bad(url, "port 0 is not a CUPS port")
        else:
            target = netloc
        if not _QUEUE_NAME.match(target):
            raise _bad(url, f"CUPS queue name {target!r} may only hold letters, digits, '-', '_' and '.'")
    return PrinterConfig(scheme, target, profile, options, redact(url), host, port)
