"""The one exception base every silkwatch error derives from."""


class SilkwatchError(Exception):
    """Base of all errors silkwatch reports to a user as one clear line.

    The command line catches this class, prints ``silkwatch: <message>`` and
    exits non-zero; anything else is a bug and keeps its traceback.
    """

    #: the ``reason`` label value this error is counted under in the metrics
    reason = "error"
