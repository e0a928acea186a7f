"""`list_info` validation, `search_criteria` matching, sorting and paging for list calls.

The reconciliation poll and bulk import page through thousands of tickets with these, so the
simulator enforces SDP's limits (row_count at most 100, 1-based start_index) and evaluates
criteria the way SDP does: times as ms-epoch strings, names case-insensitively, criteria
chained left to right by `logical_operator`, with nested `children`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .envelopes import SdpHttpError, bad_input

MAX_ROW_COUNT = 100


@dataclass
class ListInfo:
    row_count: int = 10
    start_index: int = 1
    sort_field: str | None = None
    sort_order: str = "asc"
    get_total_count: bool = False
    search_criteria: list[dict[str, Any]] | None = None
    fields_required: list[str] | None = None


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise SdpHttpError(400, 4021, f"Invalid value for {name}", field=name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SdpHttpError(400, 4021, f"Invalid value for {name}", field=name) from None


def parse_list_info(data: Mapping[str, Any] | None) -> ListInfo:
    """Validate `{"list_info": {...}}` from a list call's query string."""
    if data is None:
        return ListInfo()
    unknown = [key for key in data if key != "list_info"]
    if unknown:
        raise bad_input(f"Invalid input_data: unexpected key '{unknown[0]}'", field=unknown[0])
    raw = data.get("list_info") or {}
    if not isinstance(raw, Mapping):
        raise bad_input("Invalid input_data: 'list_info' must be an object", field="list_info")
    info = ListInfo()
    if "row_count" in raw:
        info.row_count = _as_int(raw["row_count"], "row_count")
    if not 0 <= info.row_count <= MAX_ROW_COUNT:
        raise bad_input(f"row_count should be between 0 and {MAX_ROW_COUNT}", field="row_count")
    if "start_index" in raw:
        info.start_index = _as_int(raw["start_index"], "start_index")
    if info.start_index < 1:
        raise bad_input("start_index should be greater than 0", field="start_index")
    info.sort_field = raw.get("sort_field")
    info.sort_order = str(raw.get("sort_order", "asc")).lower()
    if info.sort_order not in ("asc", "desc"):
        raise bad_input("sort_order should be asc or desc", field="sort_order")
    info.get_total_count = bool(raw.get("get_total_count", False))
    criteria = raw.get("search_criteria")
    if isinstance(criteria, Mapping):
        criteria = [dict(criteria)]
    if criteria is not None and not (
        isinstance(criteria, list) and all(isinstance(c, Mapping) for c in criteria)
    ):
        raise bad_input("search_criteria should be an object or an array", field="search_criteria")
    info.search_criteria = criteria
    required = raw.get("fields_required")
    if required is not None and not (
        isinstance(required, list) and all(isinstance(f, str) for f in required)
    ):
        raise bad_input(
            "fields_required should be an array of field names", field="fields_required"
        )
    info.fields_required = required
    return info


def _resolve(obj: Mapping[str, Any], field: str) -> Any:
    """Follow a dotted field; time objects resolve to their `value`."""
    parts = field.split(".")
    if parts[0] not in obj:
        raise SdpHttpError(
            400, 4001, f"Invalid field '{field}' in search_criteria", field="search_criteria"
        )
    value: Any = obj
    for part in parts:
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, Mapping) and "value" in value:
        value = value["value"]
    elif isinstance(value, Mapping) and "name" in value:
        value = value["name"]
    return value


def _compare_key(value: Any) -> tuple[int, Any]:
    text = str(value)
    try:
        return (0, float(text))
    except ValueError:
        return (1, text.lower())


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, list[Any]], bool]:
    def check(actual: Any, wanted: list[Any]) -> bool:
        return actual is not None and op(_compare_key(actual), _compare_key(wanted[0]))

    return check


def _between(actual: Any, wanted: list[Any]) -> bool:
    if actual is None or len(wanted) != 2:
        return False
    return _compare_key(wanted[0]) <= _compare_key(actual) <= _compare_key(wanted[1])


def _is(actual: Any, wanted: list[Any]) -> bool:
    return actual is not None and any(str(actual).lower() == str(w).lower() for w in wanted)


def _contains(actual: Any, wanted: list[Any]) -> bool:
    return actual is not None and any(str(w).lower() in str(actual).lower() for w in wanted)


CONDITIONS: dict[str, Callable[[Any, list[Any]], bool]] = {
    "is": _is,
    "is not": lambda a, w: not _is(a, w),
    "greater than": _ordered(lambda a, b: a > b),
    "greater or equal": _ordered(lambda a, b: a >= b),
    "lesser than": _ordered(lambda a, b: a < b),
    "lesser or equal": _ordered(lambda a, b: a <= b),
    "between": _between,
    "not between": lambda a, w: a is not None and not _between(a, w),
    "contains": _contains,
    "not contains": lambda a, w: not _contains(a, w),
    "starts with": lambda a, w: a is not None and str(a).lower().startswith(str(w[0]).lower()),
    "ends with": lambda a, w: a is not None and str(a).lower().endswith(str(w[0]).lower()),
}
ALIASES = {
    "=": "is",
    "eq": "is",
    "!=": "is not",
    "neq": "is not",
    "gt": "greater than",
    "gte": "greater or equal",
    "lt": "lesser than",
    "lte": "lesser or equal",
}


def _match_one(obj: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    field = node.get("field")
    condition = str(node.get("condition", "is")).strip().lower()
    condition = ALIASES.get(condition, condition)
    check = CONDITIONS.get(condition)
    if not isinstance(field, str) or check is None:
        raise bad_input(
            f"Invalid search_criteria: field {field!r}, condition {condition!r}",
            field="search_criteria",
        )
    wanted = node.get("values", node.get("value"))
    if wanted is None:
        raise bad_input("search_criteria needs value or values", field="search_criteria")
    values = list(wanted) if isinstance(wanted, list) else [wanted]
    return check(_resolve(obj, field), values)


def _combine(result: bool, node: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    operator = str(node.get("logical_operator", "AND")).upper()
    value = _match_tree(obj, node)
    return (result or value) if operator == "OR" else (result and value)


def _match_tree(obj: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    result = _match_one(obj, node)
    for child in node.get("children") or []:
        result = _combine(result, child, obj)
    return result


def matches(obj: Mapping[str, Any], criteria: list[dict[str, Any]] | None) -> bool:
    if not criteria:
        return True
    result = _match_tree(obj, criteria[0])
    for node in criteria[1:]:
        result = _combine(result, node, obj)
    return result


def select(
    items: Iterable[Mapping[str, Any]], info: ListInfo
) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """Filter, sort and cut one page; return it with the `list_info` SDP echoes back."""
    chosen = [obj for obj in items if matches(obj, info.search_criteria)]
    sort_field = info.sort_field or "created_time"
    chosen.sort(
        key=lambda obj: (_sort_value(obj, sort_field), _compare_key(obj.get("id"))),
        reverse=info.sort_order == "desc",
    )
    start = info.start_index - 1
    page = chosen[start : start + info.row_count]
    echo: dict[str, Any] = {
        "has_more_rows": start + len(page) < len(chosen),
        "start_index": info.start_index,
        "row_count": len(page),
        "sort_field": sort_field,
        "sort_order": info.sort_order,
    }
    if info.search_criteria:
        echo["search_criteria"] = info.search_criteria
    if info.get_total_count:
        echo["total_count"] = len(chosen)
    return page, echo


def _sort_value(obj: Mapping[str, Any], field: str) -> tuple[int, Any]:
    try:
        value = _resolve(obj, field)
    except SdpHttpError:
        raise bad_input(f"Invalid sort_field '{field}'", field="sort_field") from None
    return (2, "") if value is None else _compare_key(value)
