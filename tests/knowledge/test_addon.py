"""pytest-splunk-addon 6.4.0 entry point: it generates the add-on's tests from the built app and these samples.

Runs only in .venv-psa (pytest-splunk-addon pins pytest<8): collected offline by
tests/integration/test_pytest_splunk_addon.py, run for real against a Splunk as the README describes.
"""
from pytest_splunk_addon.standard_lib.addon_basic import Basic


class Test_App(Basic):
    def empty_method(self) -> None:
        pass
