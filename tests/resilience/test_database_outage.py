"""PostgreSQL restarted under a running web server: the next request works, no restart needed.

Uses a private PostgreSQL cluster so stopping it disturbs nothing else on the machine.
"""

import subprocess
import sys

import pytest
import requests

from tests.support.processes import ROOT, PrivatePostgres, regui_env, running, start_web

pytestmark = pytest.mark.slow


@pytest.fixture
def private_postgres():
    server = PrivatePostgres()
    server.init()
    server.start()
    yield server
    server.stop()
    server.remove()


def test_web_recovers_after_a_database_restart(private_postgres, tmp_path):
    env = regui_env(DATABASE_URL=private_postgres.url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    with running(start_web, env, tmp_path / "web.log") as web:
        assert requests.get(f"{web.url}/health/ready", timeout=10).status_code == 200

        private_postgres.stop()
        down = requests.get(f"{web.url}/health/ready", timeout=10)
        assert down.status_code == 503
        assert down.json()["problems"][0].startswith("database: ")

        private_postgres.start()
        assert requests.get(f"{web.url}/health/ready", timeout=10).status_code == 200
        login = requests.get(f"{web.url}/accounts/login/", timeout=10)
        assert login.status_code == 200
