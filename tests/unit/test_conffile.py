"""The strict conf reader refuses what Splunk would silently merge."""
import pytest

from tools.conffile import ConfError, parse_text


def test_continuation_lines_keep_newlines() -> None:
    stanzas = parse_text("[s]\nsearch = a \\\n| b\nother = 1\n")
    assert stanzas["s"] == {"search": "a \n| b", "other": "1"}


@pytest.mark.parametrize("text, message", [
    ("[a]\nx = 1\n[a]\ny = 2\n", r"stanza \[a\] appears twice"),
    ("[a]\nx = 1\nx = 2\n", "key 'x' appears twice"),
    ("[a\nx = 1\n", "without closing"),
    ("[a]\njust words\n", "neither a stanza"),
])
def test_refuses_duplicates_and_garbage(text: str, message: str) -> None:
    with pytest.raises(ConfError, match=message):
        parse_text(text)
