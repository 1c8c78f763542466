"""Bitbucket's endpoints on the stub: login flow, cookies, REST, concurrency."""

from __future__ import annotations

import concurrent.futures
import socket

import requests

from lab.client import Vantage
from lab.pki import make_pki
from tests.unit.stubutil import running_stub


def test_browser_login_sets_a_context_scoped_cookie_and_lands_on_next(tmp_path):
    with running_stub(tmp_path, "server.port=0\nserver.context-path=/bitbucket\n") as stub:
        base = f"http://127.0.0.1:{stub.ports[0]}/bitbucket"
        session = requests.Session()
        form = session.get(f"{base}/dashboard", timeout=10)
        assert form.url == f"{base}/login?next=/dashboard"
        assert "j_atl_security_check" in form.text
        landed = session.post(f"{base}/j_atl_security_check", timeout=10,
                              data={"j_username": "admin", "j_password": "admin", "next": "/dashboard"})
        cookie = landed.history[0].headers["Set-Cookie"]
    assert landed.url == f"{base}/dashboard"
    assert "Logged in as admin" in landed.text
    assert landed.headers["X-AUSERNAME"] == "admin"
    assert "Path=/bitbucket" in cookie and "HttpOnly" in cookie and "Secure" not in cookie


def test_login_with_a_wrong_password_shows_the_form_again(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        response = requests.post(f"http://127.0.0.1:{stub.ports[0]}/j_atl_security_check", timeout=10,
                                 data={"j_username": "admin", "j_password": "wrong"}, allow_redirects=False)
    assert response.status_code == 200
    assert "Invalid username or password" in response.text
    assert "Set-Cookie" not in response.headers


def test_session_cookie_is_secure_on_a_secure_connector(tmp_path):
    tls = make_pki(tmp_path / "pki", ["localhost"])
    properties = f"server.port=0\nserver.ssl.enabled=true\nserver.ssl.key-store={tls.keystore}\n"
    with running_stub(tmp_path / "home", properties) as stub:
        response = Vantage(None, tls.ca).session().post(
            f"https://localhost:{stub.ports[0]}/j_atl_security_check", allow_redirects=False, timeout=10,
            data={"j_username": "admin", "j_password": "admin"})
    assert "Secure" in response.headers["Set-Cookie"] and "Path=/;" in response.headers["Set-Cookie"]


def test_application_properties_look_like_bitbucket(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        body = requests.get(f"http://127.0.0.1:{stub.ports[0]}/rest/api/1.0/application-properties",
                            timeout=10).json()
    assert body["displayName"] == "Bitbucket" and body["buildNumber"].isdigit()


def test_configured_users_replace_the_default_admin(tmp_path):
    with running_stub(tmp_path, "server.port=0\nlab.users=alice:s3cret\n") as stub:
        url = f"http://127.0.0.1:{stub.ports[0]}/scm/LAB/repo.git/info/refs?service=git-upload-pack"
        assert requests.get(url, auth=("alice", "s3cret"), timeout=10).status_code == 200
        assert requests.get(url, auth=("admin", "admin"), timeout=10).status_code == 401


def test_fifty_concurrent_clients_and_a_stalled_one_do_not_stall_the_stub(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        stalled = socket.create_connection(("127.0.0.1", stub.ports[0]))
        stalled.sendall(b"GET /status HTTP/1.1\r\nHo")  # never finishes its request
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(
                lambda _: requests.get(f"http://127.0.0.1:{stub.ports[0]}/status", timeout=10).status_code,
                range(50)))
        stalled.close()
    assert statuses == [200] * 50  # a stall would surface as a 10 s timeout error



def test_the_echo_endpoint_returns_the_request_line_exactly_as_it_arrived(tmp_path):
    import json

    from tests.unit.stubutil import raw_request

    target = "/rest/lab/1.0/echo/a%3Bb//c%C3%A9+d%25"
    with running_stub(tmp_path, "server.port=0\n") as stub:
        answer = raw_request(stub.ports[0], target, {"Host": "bitbucket"})
    document = json.loads(answer.body)
    assert document["raw_uri"] == target
    assert document["request_line"] == f"GET {target} HTTP/1.1"
def test_the_stub_tells_what_it_answered_to_each_request_of_an_id_and_not_the_labs_own_questions(tmp_path):
    with running_stub(tmp_path / "home", "server.port=0\nserver.context-path=/bitbucket\n") as stub:
        base = f"http://127.0.0.1:{stub.ports[0]}/bitbucket"
        tag = {"X-Request-ID": "lab-answers-1"}
        requests.get(f"{base}/status", headers=tag, timeout=10)
        requests.post(f"{base}/scm/LAB/repo.git/git-upload-pack", headers=tag, data=b"0000", timeout=10)
        answers = requests.get(f"{base}/rest/lab/1.0/answers?id=lab-answers-1", headers=tag, timeout=10).json()
        other = requests.get(f"{base}/rest/lab/1.0/answers?id=lab-answers-2", timeout=10).json()
    assert [(a["method"], a["path"], a["status"]) for a in answers["answers"]] == [
        ("GET", "/bitbucket/status", 200), ("POST", "/bitbucket/scm/LAB/repo.git/git-upload-pack", 401)]
    assert other["answers"] == []
