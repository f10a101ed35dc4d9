"""The automations benchmark runs end to end at a small size (it measures; this only checks it works)."""

from __future__ import annotations

import pytest

from bench import automations as bench

pytestmark = pytest.mark.django_db(transaction=True)


def test_automations_benchmark_runs_at_a_small_size_and_reports_every_figure():
    results = bench.run(members=50, entries_count=20)
    assert results["send"]["sent"] == 50 and results["send"]["messages_per_s"] > 0
    assert results["entries"]["firings_recorded"] == 20 and results["entries"]["firings_sent"] == 20
