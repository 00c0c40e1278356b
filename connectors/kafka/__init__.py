"""Kafka transport: the flow-batch frame and the publisher."""
