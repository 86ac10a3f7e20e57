"""When the server snapshots: every N commands, spaced so that snapshots take a bounded share
of the time (persistence/snapshots.SnapshotSchedule; the server's loop asks it every second)."""

from persistence.snapshots import SnapshotSchedule, SnapshotTaken


def _taken(seq: int, elapsed_s: float) -> SnapshotTaken:
    return SnapshotTaken(seq=seq, size_bytes=1_000, child_cpu_s=elapsed_s / 2,
                         elapsed_s=elapsed_s)


def test_the_first_snapshot_is_due_after_every_commands_whatever_the_time():
    schedule = SnapshotSchedule(every=100, share_max_pct=5, last_seq=40)
    assert not schedule.due(139, now=0.0)
    assert schedule.due(140, now=0.0)


def test_a_snapshot_that_took_half_a_second_keeps_the_next_ten_seconds_away_at_five_percent():
    schedule = SnapshotSchedule(every=100, share_max_pct=5, last_seq=0)
    schedule.taken(_taken(seq=100, elapsed_s=0.5), started=1_000.0)
    assert not schedule.due(10_000, now=1_009.9)  # plenty of commands, too soon
    assert schedule.due(10_000, now=1_010.0)
    assert not schedule.due(199, now=2_000.0)  # long enough, too few commands since seq 100
    assert schedule.due(200, now=2_000.0)


def test_at_a_hundred_percent_only_the_snapshot_itself_spaces_them():
    schedule = SnapshotSchedule(every=10, share_max_pct=100, last_seq=0)
    schedule.taken(_taken(seq=10, elapsed_s=2.0), started=50.0)
    assert not schedule.due(20, now=51.9)
    assert schedule.due(20, now=52.0)
