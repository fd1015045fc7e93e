"""AMI wire format: frames of ``Key: Value`` lines, each frame ended by an empty line (``\\r\\n\\r\\n``).

Standard library only, no I/O: the connection code feeds the bytes it reads and writes the bytes built here, the
test servers do the same. Kept apart from panoramisk so the decoder's guarantees (a UTF-8 character split across two
reads survives; a runaway frame cannot grow memory without bound; noise is counted, never raised) are ours and tested.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping

FRAME_END = "\r\n\r\n"
LINE_END = "\r\n"
DEFAULT_MAX_FRAME_BYTES = 64 * 1024


class MalformedFrame(ValueError):
    """A frame that is neither an event nor a response (no ``Event`` and no ``Response`` key)."""


def parse_frame(text: str) -> dict[str, str]:
    """Parse one AMI frame into a dict, keys exactly as sent.

    Values may themselves contain ``": "`` (AppData, CallerIDName…), so each line is split on the first one only.
    ``Key: `` gives ``""``; a line with no ``": "`` is tolerated (``"Key:"`` gives key ``Key``, anything else is a
    key with value ``""``). A key sent several times (``Output:`` lines of a ``Command`` response) keeps every value,
    joined by ``"\\n"``. Raises :class:`MalformedFrame` when there is neither ``Event`` nor ``Response``.
    """
    frame: dict[str, str] = {}
    for line in text.split(LINE_END):
        if not line:
            continue
        key, sep, value = line.partition(": ")
        if not sep and key.endswith(":"):
            key = key[:-1]
        if key in frame:
            frame[key] = f"{frame[key]}\n{value}"
        else:
            frame[key] = value
    if "Event" not in frame and "Response" not in frame:
        raise MalformedFrame(f"AMI frame without Event or Response: {text[:80]!r}")
    return frame


def format_action(action: Mapping[str, str]) -> bytes:
    """Serialise an action (``{"Action": "Ping", "ActionID": "x"}``) to the bytes to write, UTF-8.

    A CR or LF inside a key or value would let a caller-supplied string (a caller name, a reason typed by an
    operator) end the line and inject headers or a whole second action, so it is refused with ``ValueError``; so is
    ``": "`` inside a key, which would shift the key/value split.
    """
    parts: list[str] = []
    for key, value in action.items():
        key_s, value_s = str(key), str(value)
        if not key_s or "\r" in key_s or "\n" in key_s or ": " in key_s:
            raise ValueError(f"invalid AMI header name {key_s!r}")
        if "\r" in value_s or "\n" in value_s:
            raise ValueError(f"AMI header {key_s!r} has a line break in its value")
        parts.append(f"{key_s}: {value_s}{LINE_END}")
    parts.append(LINE_END)
    return "".join(parts).encode("utf-8")


class FrameDecoder:
    """Incremental decoder of the byte stream of one AMI connection.

    Reads arrive in arbitrary chunks: a chunk may end inside a frame, inside a line, or inside a multi-byte UTF-8
    character (Romanian caller names), so the bytes go through an incremental UTF-8 decoder that holds back a
    partial character until its last byte arrives; invalid bytes become U+FFFD rather than an exception.

    The first line of the stream is Asterisk's banner (``Asterisk Call Manager/11.0.0``, one line, no blank line
    after it), exposed as :attr:`banner`. After that, frames end with ``\\r\\n\\r\\n``. A frame larger than
    ``max_frame_bytes`` (counted in decoded characters, which is bytes for the ASCII headers AMI sends) is skipped,
    and so is everything up to the next frame end, counted in :attr:`oversize`; the buffer never grows past the
    limit. Frames that do not parse as an event or response (binary noise, garbage) are counted in
    :attr:`malformed`. Nothing here raises on bad input.
    """

    __slots__ = (
        "_buf",
        "_decoder",
        "_discarding",
        "_max",
        "_scan_from",
        "_want_banner",
        "banner",
        "frames",
        "malformed",
        "oversize",
    )

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 16:
            raise ValueError("max_frame_bytes too small")
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._scan_from = 0
        self._max = max_frame_bytes
        self._discarding = False
        self._want_banner = True
        self.banner: str | None = None
        self.frames = 0
        self.malformed = 0
        self.oversize = 0

    def feed(self, data: bytes) -> list[dict[str, str]]:
        """Add bytes read from the socket; return the frames completed by them, in order."""
        text = self._decoder.decode(data)
        if not text:
            return []
        buf = self._buf + text
        out: list[dict[str, str]] = []
        if self._want_banner:
            nl = buf.find(LINE_END)
            if nl < 0:
                if len(buf) > self._max:  # not a banner: give up waiting for it
                    self._want_banner = False
                else:
                    self._buf = buf
                    return out
            else:
                self._want_banner = False
                first = buf[:nl]
                if ": " not in first:
                    self.banner = first
                    buf = buf[nl + 2 :]
        start = 0
        scan = self._scan_from
        while True:
            end = buf.find(FRAME_END, scan)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            elif end - start > self._max:
                self.oversize += 1
            else:
                chunk = buf[start:end]
                try:
                    out.append(parse_frame(chunk))
                    self.frames += 1
                except MalformedFrame:
                    if chunk.strip("\r\n"):
                        self.malformed += 1
            start = scan = end + 4
        rest = buf[start:] if start else buf
        if len(rest) > self._max:
            # A runaway frame: drop it now and skip up to the next frame end. Keep 3 characters in case the
            # terminator is split across this read and the next.
            if not self._discarding:
                self.oversize += 1
                self._discarding = True
            rest = rest[-3:]
        self._buf = rest
        # Next time, resume the search where this one stopped (minus a possibly split terminator).
        self._scan_from = max(0, len(rest) - 3)
        return out
