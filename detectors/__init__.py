"""Pure computations on flow batches: aggregation and anomaly scoring.

Nothing in this package does I/O, reads a clock or talks to Kafka; both the
Faust agents and the embedded runner call these functions, so each number is
computed in exactly one place.
"""
