"""silkwatch: continuous anomaly detection on SiLK / NetFlow flow records."""

import os

__version__ = "0.1.0"

# numpy's OpenBLAS starts a thread per core that spins after import; silkwatch does no
# linear algebra worth threading, and on a small box those threads take CPU from the
# broker and the worker (5 % of a decode run, measured with perf). This must run
# before numpy is first imported, which is why it lives here; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
