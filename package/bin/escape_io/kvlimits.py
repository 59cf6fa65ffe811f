"""Splunk's KV store limits: the one owner of the numbers the add-on's state must stay under.

Defaults of limits.conf [kvstore] (limits.conf.spec; a 9.x system default, listed by `splunk btool limits list
kvstore`, gives the same figures) and of the REST API Reference's KV store "Limits":
- max_documents_per_batch_save: documents per batch_save. Recent releases default to 50,000, older ones to 1,000;
  the add-on sends at most the older figure, which every release accepts.
- max_size_per_batch_save_mb = 50: bytes of one batch_save request body.
- max_size_per_result_mb = 50: bytes of one query's result.
- max_size_per_batch_result_mb = 100: bytes of the results of one batch of queries (batch_find), which the add-on
  does not use; listed for completeness.
- max_rows_per_query = 50,000: documents one query returns; more are cut silently.
- a document is at most 16 MB (the KV store's own limit, not configurable).

The add-on keeps a margin below each (MARGIN): a request's JSON framing and splunkd's own fields (`_user`) count too.
tools/kvstandin.py, the offline stand-in, refuses and cuts at exactly these numbers.
"""
MB = 1024 * 1024
MAX_DOCUMENTS_PER_BATCH_SAVE = 1000
MAX_SIZE_PER_BATCH_SAVE = 50 * MB
MAX_SIZE_PER_RESULT = 50 * MB
MAX_SIZE_PER_BATCH_RESULT = 100 * MB
MAX_ROWS_PER_QUERY = 50000
MAX_DOCUMENT_SIZE = 16 * MB

MARGIN = 0.9  # the share of a byte limit the add-on plans to use
