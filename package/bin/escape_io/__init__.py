"""Everything the add-on persists or spools, and the only code that touches it.

- `store`: one interface over a collection of documents (load every document, save documents by `_key`), with two
  implementations: the app's KV store through splunkd (in Splunk, always in this app's namespace) and JSON files in a
  folder (offline: the replay, the tests, the benchmark). The command wrapper chooses: the KV store unless the offline
  launcher outside the package (tools/offline_command.py) handed its command class a file store.
- `linux_lineage`: escapecorrelate's per-host lineage (collection escape_linux_lineage).
- `esxi_baseline`: escapeesxi's first-seen module baseline (collection escape_esxi_module_baseline).
- `spool`: escapecorrelate's sorted run files in the search's dispatch directory.
- `lookups`: the app's shipped lookup files, read relative to bin/.
- `chunks`: splunkd's CSV chunks read into records (the same records as splunklib's reader, in fewer steps).
"""
