"""silkwatch: continuous anomaly detection on SiLK / NetFlow flow records."""

__version__ = "0.1.0"
