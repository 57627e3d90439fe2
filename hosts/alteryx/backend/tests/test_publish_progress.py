"""The progress bar: monotonic, in 0..1, ending at 1.0."""
from ayx_plugins.publish_progress import SPOOLED, UPLOAD_END, ProgressBar


def test_never_backwards_and_restarts_hold_still():
    seen = []
    bar = ProgressBar(seen.append)
    bar.set(0.1)
    bar.spooling(50, 100)
    for phase, sent, total in [("signing_in", 0, 0), ("resolving", 0, 0), ("uploading", 0, 1000),
                               ("uploading", 500, 1000), ("uploading", 100, 1000),  # an upload that started over
                               ("uploading", 1000, 1000), ("committing", 0, 0), ("waiting_for_job", 0, 0),
                               ("waiting_for_session", 0, 0), ("signing_out", 0, 0)]:
        assert bar.publish(phase, sent, total) is True
    bar.set(1.0)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert SPOOLED + (UPLOAD_END - SPOOLED) * 0.5 in seen


def test_small_steps_are_not_sent():
    seen = []
    bar = ProgressBar(seen.append)
    for i in range(1001):
        bar.publish("uploading", i, 1000)
    assert 100 < len(seen) <= 160
    assert seen[-1] == UPLOAD_END
