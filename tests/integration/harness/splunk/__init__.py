"""Stand-in for the `splunk` package that only Splunk ships (not on PyPI); see admin.py."""
