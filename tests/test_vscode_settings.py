"""The VS Code extension's settings (vscode-client/package.json) mirror the server's (lsp_server/config.py)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from lsp_server.config import BOUNDS, DECODING_POLICIES, NEXT_EDIT_PREDICTORS, SECTION, Settings, to_camel

PACKAGE_JSON = Path(__file__).resolve().parent.parent / "vscode-client" / "package.json"
# Settings only the extension reads (never sent to the server as its own); see vscode-client/src/settings.ts.
EXTENSION_ONLY = {"pythonPath", "trace.server"}
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
# Server settings whose default in the extension differs on purpose (the extension sends every setting's value, its
# own default included, so this is the value a VS Code user's server runs with): next edits as code actions are off
# there because the extension shows next edits itself.
EXTENSION_DEFAULTS = {"nextEditCodeActions": False}


@pytest.fixture(scope="module")
def contributed() -> dict[str, dict]:
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    props = package["contributes"]["configuration"]["properties"]
    assert all(key.startswith(SECTION + ".") for key in props), sorted(props)
    return {key[len(SECTION) + 1:]: schema for key, schema in props.items()}


def server_settings() -> dict[str, object]:
    defaults = Settings()
    return {to_camel(f.name): getattr(defaults, f.name) for f in fields(Settings)}


def test_every_server_setting_is_contributed_with_its_default(contributed):
    for key, default in server_settings().items():
        default = EXTENSION_DEFAULTS.get(key, default)
        assert key in contributed, f"{SECTION}.{key} is a server setting but not in vscode-client/package.json"
        schema = contributed[key]
        allowed = (float, int) if isinstance(default, float) else (type(default),)  # JSON may write 1.0 as 1
        assert schema.get("default") == default and type(schema.get("default")) in allowed, (
            f"{SECTION}.{key}: package.json default {schema.get('default')!r}, server default {default!r}")
        assert schema.get("type") == JSON_TYPES[type(default)], (
            f"{SECTION}.{key}: package.json type {schema.get('type')!r}, server type {type(default).__name__}")
        assert schema.get("description") or schema.get("markdownDescription"), f"{SECTION}.{key} has no description"


def test_the_extensions_own_defaults_are_server_settings_of_the_same_type():
    defaults = server_settings()
    for key, value in EXTENSION_DEFAULTS.items():
        assert key in defaults and type(value) is type(defaults[key]) and value != defaults[key], key


def test_only_documented_extension_settings_are_added(contributed):
    extra = set(contributed) - set(server_settings())
    assert extra == EXTENSION_ONLY, f"settings the server does not know: {sorted(extra - EXTENSION_ONLY)}"


def test_enums_match_the_server():
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    props = package["contributes"]["configuration"]["properties"]
    assert tuple(props[f"{SECTION}.decodingPolicy"]["enum"]) == DECODING_POLICIES
    assert tuple(props[f"{SECTION}.nextEditPredictor"]["enum"]) == NEXT_EDIT_PREDICTORS
    assert Settings().log_level in props[f"{SECTION}.logLevel"]["enum"]


def test_number_ranges_match_the_server(contributed):
    """VS Code only warns about a value outside a declared range; the server refuses it, with the same bounds."""
    for f in fields(Settings):
        if f.type not in ("int", "float"):
            continue
        schema = contributed[to_camel(f.name)]
        assert (schema.get("minimum"), schema.get("maximum")) == BOUNDS.get(f.name, (None, None)), (
            f"{SECTION}.{to_camel(f.name)}: package.json range [{schema.get('minimum')}, {schema.get('maximum')}], "
            f"server {BOUNDS.get(f.name)}")


def test_the_next_edit_keys_leave_the_editors_own_uses_of_tab_and_escape_alone():
    """Tab with lines selected (to indent them) applied the next edit instead; Escape with several cursors, the find
    widget or parameter hints open dismissed it instead of doing what it does there."""
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    bindings = {b["command"]: set(b["when"].split(" && ")) for b in package["contributes"]["keybindings"]}
    assert {"!editorHasSelection", "!editorHasMultipleSelections"} <= bindings["tact.applyNextEdit"]
    assert {"!findWidgetVisible", "!parameterHintsVisible", "!editorHasMultipleSelections"} <= bindings["tact.dismissNextEdit"]
