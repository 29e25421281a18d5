"""Strings in protobuf's text format, as the ``checkpoint`` state file holds them (``CEscape``/``CUnescape``).

No dependencies: the reader (``resolve``) decodes state files at start-up, the writer (``state_file``) encodes them.
"""

from __future__ import annotations

import re

_SIMPLE = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("'"): "\\'", ord("\\"): "\\\\"}


def c_escape(text: str) -> str:
    """Escape a string as protobuf's text format does (``CEscape``: octal for bytes outside printable ASCII)."""
    out = []
    for byte in text.encode("utf-8"):
        if byte in _SIMPLE:
            out.append(_SIMPLE[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v"}


def unescape_text_proto(quoted: str) -> str:
    r"""The string a protobuf text-format literal holds, decoded as TensorFlow does: escapes
    (``\346``, ``\x41``, ``\n``, ``\\``...) to bytes, then the bytes as UTF-8.

    Example:
        >>> print(unescape_text_proto(r"C:\\Users\\\346\241\214\351\235\242"))
        C:\Users\桌面
    """
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(quoted):
        out += quoted[pos : match.start()].encode("utf-8")
        octal, hexa, char = match.groups()
        if octal:
            out.append(int(octal, 8) & 0xFF)
        elif hexa:
            out.append(int(hexa, 16))
        else:
            out += _SIMPLE_ESCAPES.get(char, char.encode("utf-8"))
        pos = match.end()
    out += quoted[pos:].encode("utf-8")
    return out.decode("utf-8", errors="replace")
