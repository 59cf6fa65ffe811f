"""The SCP v2 driver lives in tools/scp.py (the replay uses it too); tests import it from here."""
from tools.scp import (  # noqa: F401  re-exported for the tests
    CommandRun,
    Value,
    decode_records,
    encode_records,
    run_command,
    searchinfo,
)
