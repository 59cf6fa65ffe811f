"""Runs the built add-on's settings handler script for one request, as splunkd runs it, and prints the outcome.

    python run_settings_handler.py <app>/bin/TA_escape_to_host_rh_settings.py '<request json>'

The script runs as __main__ from a path under etc/apps/TA_escape_to_host/ (splunktaucclib derives the app name
from it). The caller puts this folder first on PYTHONPATH, so `splunk.admin` is the stand-in next to this file, and
the script's bin/ folder after it.
"""
import json
import runpy
import sys

from splunk import admin  # the stand-in next to this file (PYTHONPATH)

script = sys.argv[1]
admin.REQUEST.update(json.loads(sys.argv[2]))
runpy.run_path(script, run_name="__main__")
print(json.dumps(admin.RESPONSE))
