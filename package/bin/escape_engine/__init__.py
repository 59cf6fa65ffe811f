"""Pure, typed detection engine of TA_escape_to_host: no splunklib, no file or network access, no logging setup.

Runs on Python 3.9 (Splunk 9.3-10.1) and 3.13 (Splunk 10.2+). Command wrappers in package/bin hand records to
the `run(...)` entry point of one module each. The setup page's logic lives beside it in `escape_setup`.
"""
