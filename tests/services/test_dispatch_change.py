"""Change status against the previous scene of a query, and the headers of a dead letter."""

from dataclasses import dataclass

from shapely.geometry import box

from services.contracts import ChangeStatus
from services.dispatcher.change import change_statuses
from services.dispatcher.dlq import MAX_REASON_CHARS, dead_letter_headers

NEW, PERSISTING = ChangeStatus.new, ChangeStatus.persisting


def test_everything_is_new_without_a_previous_scene():
    assert change_statuses([box(0, 0, 1, 1), box(5, 5, 6, 6)], []) == [NEW, NEW]
    assert change_statuses([], [box(0, 0, 1, 1)]) == []


def test_overlap_persists_even_with_a_low_iou():
    previous = [box(0, 0, 1, 1), box(10, 10, 11, 11)]
    shifted = box(0.2, 0.2, 1.2, 1.2)  # IoU 0.47
    grown = box(10.9, 10.9, 14, 14)  # IoU 0.001: a growing object still persists
    elsewhere = box(20, 20, 21, 21)
    assert change_statuses([shifted, grown, elsewhere], previous) == [PERSISTING, PERSISTING, NEW]


def test_touching_without_shared_area_is_new():
    previous = [box(0, 0, 1, 1)]
    assert change_statuses([box(1, 0, 2, 1), box(1, 1, 2, 2)], previous) == [NEW, NEW]


@dataclass
class _Record:
    topic: str = "scenes"
    partition: int = 2
    offset: int = 41
    key: bytes | None = b"s2/item"
    value: bytes | None = b"{}"


def test_dead_letter_headers_carry_reason_source_and_attempt():
    headers = dict(
        dead_letter_headers(_Record(), error="no_usable_asset", reason="no visual asset", attempt=3)
    )
    assert headers == {
        "error": b"no_usable_asset",
        "reason": b"no visual asset",
        "source_topic": b"scenes",
        "source_partition": b"2",
        "source_offset": b"41",
        "attempt": b"3",
    }
    long = dict(dead_letter_headers(_Record(), error="x", reason="y" * 10_000, attempt=1))
    assert len(long["reason"]) == MAX_REASON_CHARS
