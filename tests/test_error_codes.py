"""Every `error` code the code base can answer is listed in api/error_codes.py and
documented in docs/errors.md; new codes are named `<subject>_<condition>`."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from api.error_codes import CODES, LEGACY, follows_pattern
from api.errors import DEFAULT_ERROR_CODES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "console", "notifications")
DOCS = ROOT / "docs" / "errors.md"
# An `error=` keyword that is no error code: segno's QR error-correction level.
NOT_CODES = {("console/qr.py", "m")}
# Codes are snake_case; validators' `error=` messages ("Must be …") are sentences.
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def _text(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_error_target(target: ast.AST) -> bool:
    """`error = …` or `something["error"] = …`."""
    if isinstance(target, ast.Name):
        return target.id == "error"
    return isinstance(target, ast.Subscript) and _text(target.slice) == "error"


def _assigned(node: ast.Assign) -> Iterator[str | None]:
    for target in node.targets:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            pairs = list(zip(target.elts, node.value.elts, strict=False))
        else:
            pairs = [(target, node.value)]
        yield from (_text(value) for name, value in pairs if _is_error_target(name))


def _codes_in(tree: ast.AST) -> Iterator[str | None]:
    """Literal codes given as `error=`, assigned to `error` / `[...]["error"]` (a class's
    default code, a result being built) or written as a dict's "error"."""
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "error":
            yield _text(node.value)
        elif isinstance(node, ast.Assign):
            yield from _assigned(node)
        elif isinstance(node, ast.Dict):
            pairs = zip(node.keys, node.values, strict=True)
            yield from (_text(value) for key, value in pairs if _text(key) == "error")


def raised_codes() -> dict[str, set[str]]:
    """Each code the code base can answer, with the files that raise it."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            for code in _codes_in(ast.parse(path.read_text(encoding="utf-8"))):
                if code and _CODE.match(code) and (where, code) not in NOT_CODES:
                    found.setdefault(code, set()).add(where)
    for code in DEFAULT_ERROR_CODES.values():
        found.setdefault(code, set()).add("api/errors.py")
    return found


def test_the_collector_finds_codes_of_every_kind():
    """Keyword, class default, tuple assignment, subscript and the status defaults."""
    found = raised_codes()
    assert "api/services/diary_rules.py" in found["backfill_window_closed"]  # error="…"
    assert "console/views/participant.py" in found["stale_version"]  # class default
    assert "api/resources/diary_sync.py" in found["internal_error"]  # error, message = "…", …
    assert "api/errors.py" in found["too_many_attempts"]  # kwargs["error"] = "…"
    assert "method_not_allowed" in found  # DEFAULT_ERROR_CODES only
    assert "m" not in found and not any(" " in code for code in found)


def test_every_raised_code_is_listed_and_every_listed_code_raised():
    found = raised_codes()
    unlisted = {code: sorted(files) for code, files in found.items() if code not in CODES}
    assert not unlisted, f"add these to api/error_codes.py: {unlisted}"
    assert not set(CODES) - set(found), "listed in api/error_codes.py but raised nowhere"


def test_every_listed_code_has_a_meaning_and_is_documented():
    documented = set(re.findall(r"`([a-z][a-z0-9_]*)`", DOCS.read_text(encoding="utf-8")))
    assert all(meaning.strip() for meaning in CODES.values())
    assert sorted(set(CODES) - documented) == [], "document these in docs/errors.md"


def test_new_codes_follow_subject_condition_and_legacy_is_only_the_exceptions():
    assert not LEGACY - set(CODES)
    assert sorted(c for c in CODES if c not in LEGACY and not follows_pattern(c)) == []
    assert sorted(c for c in LEGACY if follows_pattern(c)) == [], "these need no exception"


def test_the_pattern_tells_subject_first_from_condition_first():
    assert follows_pattern("alert_already_acknowledged")
    assert follows_pattern("token_expired")
    assert not follows_pattern("unknown_site")
    assert not follows_pattern("conflict")
    assert not follows_pattern("Alert_not_found")
