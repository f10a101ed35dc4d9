"""The OpenAPI schema's error answers, which every operation can give and drf-spectacular leaves out."""

from __future__ import annotations

ERROR = {
    "type": "object",
    "description": "`detail` says what is wrong; a refused body names each bad field instead "
    '(e.g. {"email": ["Enter a valid email address."]}).',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
ANSWERS = {
    "400": "The request is not valid: what is wrong, and where.",
    "401": "No valid token (`Authorization: Token <key>`).",
    "403": "The token's user lacks the permission this needs.",
    "429": "Too many requests: wait for `Retry-After` seconds.",
}


def declare_error_answers(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            for status, description in ANSWERS.items():
                answers.setdefault(status, {"description": description, "content": reference})
            if "{" in path or "requestBody" not in operation:  # an unknown row, or a cursor past the end
                answers.setdefault("404", {"description": "No such object.", "content": reference})
            if "requestBody" in operation:
                answers.setdefault("413", {"description": "The body is too large.", "content": reference})
    return result
