"""The server-drawn charts: a sparkline per group in the list, a trend chart on the Members tab."""

from __future__ import annotations

from datetime import UTC, datetime

from groups.charts import sparkline, trend_chart


def test_sparkline_draws_one_point_per_count_and_says_the_change():
    svg = str(sparkline([10, 12, 9, 15]))
    assert svg.startswith('<svg class="sparkline"') and "10 → 15 (+5)" in svg
    assert len(svg.split('points="')[1].split('"')[0].split()) == 4


def test_sparkline_of_a_flat_or_empty_history():
    assert str(sparkline([])) == ""
    assert "<polyline" in str(sparkline([7]))


def test_trend_chart_labels_the_range_and_escapes_nothing_unsafe():
    points = [(datetime(2026, 1, 1, tzinfo=UTC), 3), (datetime(2026, 1, 31, tzinfo=UTC), 8)]
    svg = str(trend_chart(points))
    assert "01 Jan" in svg and "31 Jan" in svg and ">8</text>" in svg and "<script" not in svg


def test_trend_chart_without_history_says_so():
    assert "No size history yet" in str(trend_chart([]))
