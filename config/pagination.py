"""Pagination and ordering for the API's long, growing lists (a group's history and members).

A page number counts rows from the start, so rows added or removed between two requests shift
every later page: some rows show twice and others never. A cursor here names the last row seen by
every field of the ordering (which ends with the primary key), so a client paging through sees each
row once however the list changes meanwhile. DRF's own CursorPagination keeps only the first field
and falls back to counting rows among equal values, and one refresh writes thousands of history
rows with the same time.
"""

from __future__ import annotations

import json
from functools import reduce

from django.db.models import Q
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import Cursor, CursorPagination, _reverse_ordering


class GrowingListPagination(CursorPagination):
    """`{"next", "previous", "results"}`, 100 rows a page (`?page_size=` up to 1,000)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.cursor = self.decode_cursor(request)
        backwards = bool(self.cursor and self.cursor.reverse)
        ordering = _reverse_ordering(self.ordering) if backwards else self.ordering
        queryset = queryset.order_by(*ordering)
        if self.cursor is not None:
            queryset = queryset.filter(_after(ordering, self._values_of(self.cursor.position)))
        rows = list(queryset[: self.page_size + 1])
        more = len(rows) > self.page_size
        self.page = rows[: self.page_size]
        if backwards:
            self.page.reverse()
        self.has_next = True if backwards else more
        self.has_previous = more if backwards else self.cursor is not None
        return self.page

    def get_next_link(self):
        if not (self.has_next and self.page):
            return None
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=self._position(self.page[-1])))

    def get_previous_link(self):
        if not (self.has_previous and self.page):
            return None
        return self.encode_cursor(Cursor(offset=0, reverse=True, position=self._position(self.page[0])))

    def _position(self, row) -> str:
        values = [getattr(row, name.lstrip("-")) for name in self.ordering]
        return json.dumps([value.isoformat() if hasattr(value, "isoformat") else value for value in values])

    def _values_of(self, position: str | None) -> list:
        try:
            values = json.loads(position or "")
        except ValueError:
            values = None
        if not isinstance(values, list) or len(values) != len(self.ordering):
            raise NotFound(self.invalid_cursor_message)
        return values


def _after(ordering, values) -> Q:
    """Rows after `values` in `ordering`: (a, b, c) > (x, y, z), each field in its own direction."""
    conditions = []
    for index, name in enumerate(ordering):
        field = name.lstrip("-")
        equal = {f.lstrip("-"): value for f, value in zip(ordering[:index], values, strict=False)}
        beyond = {f"{field}__{'lt' if name.startswith('-') else 'gt'}": values[index]}
        conditions.append(Q(**equal, **beyond))
    return reduce(lambda a, b: a | b, conditions)


class TotalOrderingFilter(OrderingFilter):
    """`?ordering=` over the offered fields, always ending with the primary key in the same direction,
    so rows that share a time keep one order from page to page."""

    def get_ordering(self, request, queryset, view):
        ordering = list(super().get_ordering(request, queryset, view) or ["-id"])
        if ordering[-1].lstrip("-") not in ("pk", "id"):
            ordering.append("-id" if ordering[-1].startswith("-") else "id")
        return ordering
