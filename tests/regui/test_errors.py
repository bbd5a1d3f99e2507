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
