"""The API's request limits come from the environment and are checked at start-up."""

from tests.regui.test_settings import run_manage


def test_a_bad_api_rate_stops_startup_with_one_line():
    result = run_manage("check", REGUI_API_TOKEN_RATE="lots")

    assert result.returncode != 0
    assert "REGUI_API_TOKEN_RATE must look like 60/min" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
