def test_sites_exist(factory):
    coordinator = factory.staff("admin", sites=())
    response = factory.as_(coordinator).get("/api/v1/sites")
    assert response.status_code == 200
    assert len(response.json) == 6
