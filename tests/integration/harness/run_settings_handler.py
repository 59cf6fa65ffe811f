"""Runs the built add-on's settings handler script for one request, as splunkd runs it, and prints the outcome.

    python run_settings_handler.py <app>/bin/TA_escape_to_host_rh_settings.py '<request json>'

The script runs as __main__ from a path under etc/apps/TA_escape_to_host/ (splunktaucclib derives the app name
from it), with this folder first on sys.path so `splunk.admin` is the stand-in next to this file.
"""
import json
import os
import runpy
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from splunk import admin  # noqa: E402  the stand-in

script = sys.argv[1]
admin.REQUEST.update(json.loads(sys.argv[2]))
sys.path.insert(1, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
print(json.dumps(admin.RESPONSE))
