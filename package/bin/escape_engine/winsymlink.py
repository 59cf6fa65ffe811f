"""Symbolic-link and junction tooling in a Windows command line: mklink, fsutil behavior set SymlinkEvaluation,
PowerShell New-Item -ItemType SymbolicLink / Junction / HardLink and the .NET link calls, also inside PowerShell
-EncodedCommand text."""
import base64
import binascii
import re
from typing import List, NamedTuple, Optional, Tuple

_MKLINK = re.compile(r"(?:^|[\s\"'&|;(])mklink(?:\.exe)?\s+(?:/[dhj]\s+)*(\"[^\"]+\"|\S+)\s+(\"[^\"]+\"|\S+)",
                     re.IGNORECASE)
_FSUTIL_SYMLINK = re.compile(r"\bfsutil(?:\.exe)?\s+behavior\s+set\s+symlinkevaluation\b(.*)", re.IGNORECASE)
# Each pattern runs in time linear in the command line (an attacker writes it): New-Item and its -ItemType are found
# in two steps within one pipeline segment instead of one pattern with "[^|;]*?" between them (quadratic on
# "ni ni ni ..."), and no two unbounded quantifiers can take the same characters.
_SEGMENT = re.compile(r"[^|;]+")
_NEW_ITEM = re.compile(r"\b(?:new-item|ni)\b", re.IGNORECASE)
_ITEM_TYPE = re.compile(r"-(?:itemtype|type|it|i)\s*(?::\s*)?[\"']?(symboliclink|junction|hardlink)\b", re.IGNORECASE)
_NEW_ITEM_VALUE = re.compile(r"-(?:value|target)\s+(\"[^\"]+\"|'[^']+'|\S+)", re.IGNORECASE)
_DOTNET_LINK = re.compile(r"\b(?:createsymboliclink|createjunction|createhardlink)\b", re.IGNORECASE)
_ENCODED = re.compile(r"(?:^|\s)[-/](e[a-z]*)\s+[\"']?([A-Za-z0-9+/=]{8,})", re.IGNORECASE)
_POWERSHELL = re.compile(r"\b(?:powershell|pwsh)(?:\.exe)?\b", re.IGNORECASE)
MAX_COMMAND_LINE = 32767  # CreateProcess' limit in UTF-16 characters: a longer one is no real command line


def _decode_encoded_commands(command_line: str) -> List[str]:
    decoded: List[str] = []
    for match in _ENCODED.finditer(command_line):
        parameter, blob = match.group(1).lower(), match.group(2)
        if not ("encodedcommand".startswith(parameter) or parameter == "ec"):
            continue
        try:
            text = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if text.isprintable() or "\n" in text:
            decoded.append(text)
    return decoded


def _new_item_link(text: str) -> "Optional[re.Match[str]]":
    """The -ItemType SymbolicLink / Junction / HardLink argument of a New-Item (alias ni) in one pipeline segment."""
    for segment in _SEGMENT.finditer(text):
        command = _NEW_ITEM.search(segment.group(0))
        if command:
            kind = _ITEM_TYPE.search(segment.group(0), command.end())
            if kind:
                return kind
    return None


class SymlinkHit(NamedTuple):
    tool: str  # mklink | fsutil | powershell | dotnet
    detail: str
    targets: Tuple[str, ...]


def symlink_tooling(command_line: str) -> Optional[SymlinkHit]:
    """Find symbolic-link / junction tooling in a command line (and in PowerShell -EncodedCommand text)."""
    command_line = command_line[:MAX_COMMAND_LINE]
    texts = [command_line]
    if _POWERSHELL.search(command_line):
        texts.extend(_decode_encoded_commands(command_line))
    for text in texts:
        mklink = _MKLINK.search(text)
        if mklink:
            return SymlinkHit("mklink", mklink.group(0).strip(), (mklink.group(2).strip("\"'"),))
        fsutil = _FSUTIL_SYMLINK.search(text)
        if fsutil:
            return SymlinkHit("fsutil", "fsutil behavior set SymlinkEvaluation" + fsutil.group(1).rstrip(), ())
        new_item = _new_item_link(text)
        if new_item:
            value = _NEW_ITEM_VALUE.search(text)
            targets = (value.group(1).strip("\"'"),) if value else ()
            return SymlinkHit("powershell", "New-Item -ItemType " + new_item.group(1), targets)
        dotnet = _DOTNET_LINK.search(text)
        if dotnet and (text is not command_line or _POWERSHELL.search(text)):
            return SymlinkHit("dotnet", dotnet.group(0), ())
    return None
