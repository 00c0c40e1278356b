"""Real servers for tests: Apache Kafka and Prometheus, started on 127.0.0.1 by the fixtures."""
