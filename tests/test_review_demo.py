"""`flask --app wsgi demo`: a believable trial in an empty database, and only there."""

from __future__ import annotations

import re

from tests.helpers import ApiClient


def test_demo_fills_an_empty_database_and_refuses_a_second_time(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "--seed", "7"])
    assert result.exit_code == 0, result.output
    credentials = re.findall(r"coordinator\s+(coordinator\.bj302@\S+)\s+(\S+)", result.output)
    assert len(credentials) == 1
    assert len(re.findall(r"^\s+coordinator\s", result.output, re.M)) == 6
    email, password = credentials[0]
    login = client.post("/api/v1/auth/staff/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.json
    coordinator = ApiClient(client, login.json["access_token"])

    report = coordinator.get("/api/v1/compliance").json
    assert len(report["participants"]) == 4
    assert {row["arm"] for row in report["participants"]} == {"msc", "control"}
    assert sum(row["late"] for row in report["participants"]) > 0
    assert sum(row["missing"] for row in report["participants"]) > 0
    assert report["sites"][0]["expected"] > 100

    alerts = coordinator.get("/api/v1/alerts", query_string={"page_size": 500}).json
    kinds = {a["kind"] for a in alerts}
    assert {"symptom", "missed_diary"} <= kinds
    assert any(a["status"] == "acknowledged" for a in alerts)

    first = report["participants"][0]["participant_id"]
    events = coordinator.get(f"/api/v1/participants/{first}/schedule").json
    assert {e["status"] for e in events} >= {"completed", "scheduled"}

    again = runner.invoke(args=["demo"])
    assert again.exit_code != 0
    assert "already holds participants" in again.output
