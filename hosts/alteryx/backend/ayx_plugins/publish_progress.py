"""The tool's progress bar: building the extract first, then the publish, never going backwards.

    0.00 - 0.10   closing the extract (hyperd writes the last rows)
    0.10 - 0.20   handing the .hyper to the library's spool (by bytes)
    0.20 - 0.95   uploading (by bytes sent; an upload that starts over holds the bar still)
    0.96 / 0.97 / 0.99   committing / waiting for the publish job / signing out
    1.00          published

While records arrive the bar stays at 0: their number is not known until the upstream ends, and
Designer shows the record count on the connection.
"""

EXTRACT_CLOSED = 0.10
SPOOLED = 0.20
UPLOAD_END = 0.95
PHASE_VALUES = {
    "signing_in": 0.20,
    "resolving": 0.20,
    "committing": 0.96,
    "waiting_for_job": 0.97,
    "signing_out": 0.99,
}
# Designer gets a message per change; smaller steps than this are not sent.
MIN_STEP = 0.005


class ProgressBar:
    """Calls report(value) with a non-decreasing value in 0..1."""

    def __init__(self, report):
        self._report = report
        self.value = 0.0
        self._sent = None

    def set(self, value, milestone=True):
        """Moves the bar to value (never back); small steps are sent only at milestones."""
        value = min(1.0, max(self.value, value))
        self.value = value
        if value == self._sent:
            return
        if self._sent is None or milestone or value - self._sent >= MIN_STEP:
            self._sent = value
            self._report(value)

    def spooling(self, done, total):
        self.set(EXTRACT_CLOSED + (SPOOLED - EXTRACT_CLOSED) * _fraction(done, total), milestone=done >= total)

    def publish(self, phase, bytes_sent, bytes_total):
        """The library's progress callback (phase name, bytes sent in this upload pass, total)."""
        if phase == "uploading":
            self.set(SPOOLED + (UPLOAD_END - SPOOLED) * _fraction(bytes_sent, bytes_total),
                     milestone=bytes_sent >= bytes_total)
        elif phase in PHASE_VALUES:
            self.set(PHASE_VALUES[phase])
        return True  # go on


def _fraction(done, total):
    return min(1.0, done / total) if total else 1.0
