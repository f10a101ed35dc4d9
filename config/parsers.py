"""The API's JSON parser: a bounded body, bounded nesting and valid Unicode, each refused with a clear 4xx."""

from __future__ import annotations

import codecs

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.settings import api_settings
from rest_framework.utils import json

# Deep enough for any document the product accepts (rules nest at most 10 levels, two JSON levels
# each), shallow enough that no recursive code down the line can run out of stack.
MAX_JSON_DEPTH = 64


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    @classmethod
    def over(cls, limit: int) -> BodyTooLarge:
        return cls(f"the request body is larger than {limit} bytes; send fewer items per request")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            raw = stream.read(limit + 1) if limit is not None else stream.read()
        except RequestDataTooBig as exc:
            raise BodyTooLarge.over(limit) from exc
        if limit is not None and len(raw) > limit:
            raise BodyTooLarge.over(limit)
        try:
            text = codecs.decode(raw, encoding)
            data = json.loads(text, parse_constant=json.strict_constant if api_settings.STRICT_JSON else None)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        check_json(data)
        return data


def check_json(data) -> None:
    """ParseError naming the place (a JSON pointer) of the first text PostgreSQL could not store as
    UTF-8 (a lone surrogate such as \\ud800), or of nesting deeper than MAX_JSON_DEPTH."""
    stack = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                raise ParseError(
                    f"JSON parse error - the text at {path or '/'} is not valid Unicode (a lone surrogate)"
                )
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep at {path}")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            child = f"{path}/{key}"
            if isinstance(key, str) and not _is_unicode(key):
                raise ParseError(f"JSON parse error - a key at {path or '/'} is not valid Unicode (a lone surrogate)")
            stack.append((item, child, depth + 1))


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
