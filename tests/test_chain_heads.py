"""Chain heads kept outside the database catch a rewind that `audit verify` alone cannot see.

Someone who can delete the newest rows of a chain and set its head back to the row
before leaves a chain that is consistent in itself. `audit heads` writes every head to a
file kept elsewhere; `audit verify --expect-heads FILE` then also fails when a chain
recorded there is missing, shorter, or its recorded link's hash changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text

from api.chain import GENESIS_HASH
from api.db_roles import MAINTENANCE_SETTING
from api.extensions import db
from api.models import ChainHead
from tests.test_tamper_evidence import _ids_by_seq, audit_rows, behind_the_back, diary_entry

NOW = "2026-03-10T20:00:00+08:00"


def _heads(app: Flask, path: Path) -> dict:  # type: ignore[type-arg]
    result = app.test_cli_runner().invoke(args=["audit", "heads"])
    assert result.exit_code == 0, result.output
    path.write_text(result.output, encoding="utf-8")
    return json.loads(result.output)


def _verify(app: Flask, path: Path | None = None):  # type: ignore[no-untyped-def]
    args = ["audit", "verify", "--quiet"] + (["--expect-heads", str(path)] if path else [])
    return app.test_cli_runner().invoke(args=args)


def _rewind(app: Flask, backend: str, key: str, to_seq: int) -> None:
    """Delete a chain's rows after `to_seq` and set its head back, as an intruder would."""
    rows = _ids_by_seq(app, key)
    for seq, (table, row_id, _digest) in rows.items():
        if seq > to_seq:
            behind_the_back(app, backend, f"DELETE FROM {table} WHERE id = :id", id=row_id)
    head = rows[to_seq][2] if to_seq else GENESIS_HASH
    behind_the_back(
        app,
        backend,
        "UPDATE chain_heads SET seq = :seq, head_hash = :h WHERE chain_key = :k",
        seq=to_seq,
        h=head,
        k=key,
    )


@pytest.fixture
def two_chains(factory, clock):  # type: ignore[no-untyped-def]
    clock.set(NOW)
    victim, bystander = factory.participant(), factory.participant()
    audit_rows(factory.app, victim.id, 4)  # seq 1 (enrolled) .. 5
    audit_rows(factory.app, bystander.id, 1)
    return victim, bystander


def test_heads_are_written_as_json_with_every_chain(app, factory, two_chains, tmp_path):
    victim, bystander = two_chains
    document = _heads(app, tmp_path / "heads.json")
    stored = factory.scalars(select(ChainHead).order_by(ChainHead.chain_key))
    assert document["format"] == 1
    assert document["taken_at"] == "2026-03-10T12:00:00.000000+00:00"
    assert document["chains"] == [
        {"chain": h.chain_key, "sequence": h.seq, "hash": h.head_hash} for h in stored
    ]
    assert {c["chain"]: c["sequence"] for c in document["chains"]} == {
        f"participant:{victim.id}": 5,
        f"participant:{bystander.id}": 2,
    }


def test_untouched_chains_pass(app, two_chains, tmp_path):
    _heads(app, tmp_path / "heads.json")
    result = _verify(app, tmp_path / "heads.json")
    assert result.exit_code == 0, result.output
    assert "2 recorded heads checked, 0 not as recorded." in result.output
    assert "all links verified" in result.output


def test_chains_grown_since_pass(app, factory, two_chains, tmp_path):
    victim, _ = two_chains
    _heads(app, tmp_path / "heads.json")
    audit_rows(app, victim.id, 3)
    diary_entry(app, victim, factory.app.config["CLOCK"]().date(), versions=2)
    result = _verify(app, tmp_path / "heads.json")
    assert result.exit_code == 0, result.output


def test_a_rewound_chain_passes_plain_verify_but_not_the_recorded_heads(
    app, backend, two_chains, tmp_path
):
    victim, _ = two_chains
    key = f"participant:{victim.id}"
    _heads(app, tmp_path / "heads.json")
    _rewind(app, backend, key, to_seq=3)  # the two newest rows gone, the head set back

    plain = _verify(app)
    assert plain.exit_code == 0, plain.output  # consistent in itself
    anchored = _verify(app, tmp_path / "heads.json")
    assert anchored.exit_code == 1
    assert (
        f"REWOUND {key}: chain_heads seq 5: the chain is shorter than recorded: it ends at "
        "seq 3; expected 5, stored 3" in anchored.output
    )
    assert "1 not as recorded" in anchored.output


def test_a_rewound_and_regrown_chain_is_caught_by_the_recorded_hash(
    app, backend, two_chains, tmp_path
):
    victim, _ = two_chains
    key = f"participant:{victim.id}"
    document = _heads(app, tmp_path / "heads.json")
    recorded = {c["chain"]: c["hash"] for c in document["chains"]}[key]
    _rewind(app, backend, key, to_seq=4)
    audit_rows(app, victim.id, 2)  # the app writes on: seq 5 again, with another hash
    assert _verify(app).exit_code == 0
    anchored = _verify(app, tmp_path / "heads.json")
    assert anchored.exit_code == 1
    new_row = _ids_by_seq(app, key)[5]
    assert (
        f"REWOUND {key}: audit_events seq 5 (row id {new_row[1]}): the recorded link's hash "
        f"changed; expected {recorded}, stored {new_row[2]}" in anchored.output
    )


def test_a_rewound_diary_version_is_caught(app, factory, backend, clock, tmp_path):
    clock.set(NOW)
    participant = factory.participant()
    diary_entry(app, participant, clock().date(), versions=3)
    key = f"participant:{participant.id}"
    _heads(app, tmp_path / "heads.json")
    _rewind(app, backend, key, to_seq=3)  # version 3 of the entry gone
    assert _verify(app).exit_code == 0
    anchored = _verify(app, tmp_path / "heads.json")
    assert anchored.exit_code == 1 and f"REWOUND {key}: " in anchored.output


def test_a_chain_wiped_away_is_caught(app, backend, two_chains, tmp_path):
    """Everything emptied (PostgreSQL: TRUNCATE in a maintenance session)."""
    victim, bystander = two_chains
    _heads(app, tmp_path / "heads.json")
    if backend == "postgresql":
        with app.app_context(), db.engine.begin() as conn:  # triggers on, switch on
            conn.execute(text(f"SET LOCAL {MAINTENANCE_SETTING} = 'on'"))
            conn.execute(text("TRUNCATE audit_events, diary_entry_versions, chain_heads"))
    else:
        for table in ("audit_events", "diary_entry_versions", "chain_heads"):
            behind_the_back(app, backend, f"DELETE FROM {table}")
    plain = _verify(app)
    assert plain.exit_code == 0 and "0 chains" in plain.output
    anchored = _verify(app, tmp_path / "heads.json")
    assert anchored.exit_code == 1
    for participant in (victim, bystander):
        assert f"REWOUND participant:{participant.id}: chain_heads seq" in anchored.output
    assert "the chain is missing" in anchored.output
    assert "2 not as recorded" in anchored.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"format": 2, "chains": []}', "format 1"),
        ('{"format": 1, "chains": [{"chain": "x", "sequence": -1, "hash": "h"}]}', "chains[0]"),
        ('{"format": 1, "chains": {"x": 1}}', "'chains' must be a list"),
    ],
)
def test_a_heads_file_that_is_not_one_is_a_usage_error(app, tmp_path, content, message):
    path = tmp_path / "heads.json"
    path.write_text(content, encoding="utf-8")
    result = _verify(app, path)
    assert result.exit_code == 2
    assert message in result.output and "--expect-heads" in result.output


def test_a_missing_heads_file_is_a_usage_error(app, tmp_path):
    result = _verify(app, tmp_path / "nowhere.json")
    assert result.exit_code == 2 and "nowhere.json" in result.output
