"""The setup page's logic, beside the detection engine: validation and SPL rendering of the tunables and data scopes
(`tunables`) and the page's decisions without I/O (`page`).

The REST handler (bin/escape_settings_handler.py), the build (tools/content.py, tools/setup_manifest.py) and the
replay's --set use it. Typed, pure, Python 3.9+; it imports only the engine's shared facts (escape_engine.ground).
"""
