"""An unexpected error is a JSON 500 under /api/ and the HTML page elsewhere."""

from django.test import RequestFactory

from regui.errors import server_error


def test_api_errors_are_json():
    response = server_error(RequestFactory().get("/api/v1/tags/"))

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b'"detail"' in response.content


def test_page_errors_are_html():
    response = server_error(RequestFactory().get("/registries/1/"))

    assert response.status_code == 500
    assert b"<" in response.content


def test_unknown_registry_in_a_plain_api_view_is_a_json_404(client, db):
    response = client.post(
        "/api/events/registry/999999/", data="{}", content_type="application/json"
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
