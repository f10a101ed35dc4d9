"""The data in and out benchmark runs end to end at a small size (it measures; this only checks it works)."""

from __future__ import annotations

import pytest

from bench import io as bench

pytestmark = pytest.mark.django_db(transaction=True)


def test_io_benchmark_runs_at_a_small_size_and_reports_every_figure():
    results = bench.run(members=400, events=300, batch=100, groups=8, import_rows=300, events_per_customer=1, clients=2,
                        synced_groups=3)  # fmt: skip
    assert results["export"]["rows"] == 400 and results["export"]["rows_per_s"] > 0
    assert results["export"]["python_peak_mb"] < 5
    assert results["ingest"]["events"] == 300 and results["ingest"]["events_per_s"] > 0
    assert results["ingest"]["clients"] == 2
    assert results["sync"]["synced_groups"] == 3 and results["sync"]["remote_lists_equal_to_groups"] == 3
    assert results["sync"]["ingest_ratio"] > 0 and results["sync"]["changes_synced"] > 0
    assert results["import"]["rows"] == 300 and results["import"]["created"] + results["import"]["updated"] > 0
    assert results["import"]["members_not_current"] == 0 and results["import"]["groups_checked"] == 8
