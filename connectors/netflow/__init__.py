"""Receive NetFlow v5, v9 and IPFIX exports and turn them into flow batches.

One module per stage, as goflow2 splits its pipeline:

* ``fields``    — information elements → a compiled plan per template (numpy + field moves)
* ``templates`` — the template cache, keyed by (exporter, domain, template id), bounded
  and persisted to a JSON state file
* ``decoder``   — datagrams → ``FLOW_DTYPE`` batches: v5, v9 and IPFIX headers and sets,
  sampling, sequence accounting, data held until its template arrives
* ``receiver``  — UDP sockets with large kernel buffers, drained by a thread
* ``outputs``   — a SiLK repository of hourly files (as rwflowpack), a SiLK stream
* ``metrics``   — the Prometheus series, read from the decoder's counters
"""
