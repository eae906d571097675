"""The access rules of api/access.py seen from the routes that filter by site."""

from __future__ import annotations

from typing import Any

from api.access import WRITERS
from tests.helpers import Factory
from tests.test_access_matrix import _answer

# Every list or report that takes a `site` filter.
SITE_FILTERED = (
    "/api/v1/participants",
    "/api/v1/alerts",
    "/api/v1/compliance",
    "/api/v1/exports/diary-entries.csv",
)


def _by_site(factory: Factory, url: str, site: str) -> Any:
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    return factory.as_(coordinator).get(url, query_string={"site": site})


def test_participants_at_another_site_are_404_not_an_empty_list(factory: Factory):
    factory.participant(site="LZU1")
    response = _by_site(factory, "/api/v1/participants", "LZU1")
    assert response.status_code == 404, response.json
    assert response.json["error"] == "site_not_found"
    assert response.json["errors"] == {"site": ["Unknown site."]}


def test_own_site_filter_still_lists_the_sites_participants(factory: Factory):
    own = factory.participant(site="BJ302")
    factory.participant(site="LZU1")
    response = _by_site(factory, "/api/v1/participants", "BJ302")
    assert response.status_code == 200, response.json
    assert [p["id"] for p in response.json] == [own.id]


def test_an_unreachable_site_answers_byte_for_byte_as_every_report(factory: Factory):
    """Another site and an unknown site answer alike, and alike on every site filter."""
    factory.participant(site="LZU1")
    answers = {
        (url, site): _answer(_by_site(factory, url, site))
        for url in SITE_FILTERED
        for site in ("LZU1", "ZZ999")
    }
    first = answers[(SITE_FILTERED[0], "LZU1")]
    assert first[0] == 404
    assert all(answer == first for answer in answers.values()), answers


def test_monitors_do_not_write(factory: Factory):
    """The one list of writing roles leaves monitors out; they still read."""
    assert "monitor" not in WRITERS
    participant = factory.participant(site="BJ302")
    monitor = factory.as_(factory.staff("monitor", sites=()))
    url = f"/api/v1/participants/{participant.id}"
    assert monitor.get(url).status_code == 200
    refused = monitor.patch(url, json={"locale": "en"}, headers={"If-Match": "*"})
    assert refused.status_code == 403 and refused.json["error"] == "forbidden_role"
