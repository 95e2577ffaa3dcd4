"""The status page at / against a real store and the local GoHighLevel/Slack fakes."""

from __future__ import annotations

import base64
import re
import time

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.test_pipeline import PHONE, post, report
from vapi_bridge import create_app
from vapi_bridge.outbox import Outbox

TOKEN = ADMIN_TOKEN  # make_app (tests/conftest.py) sets it
DAILY_LIMIT_SPENT = (429, {"X-RateLimit-Daily-Remaining": "0"})  # parked, not retried inline
BACKENDS = pytest.mark.parametrize("backend_env", ["memory", "redis"], indirect=True)


def basic(password: str = TOKEN, user: str = "anyone") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def row(html: str, call_id: str) -> str:
    return re.search(rf'<tr id="call-{call_id}">.*?</tr>', html, re.S).group(0)


def count(html: str, name: str) -> int:
    return int(re.search(rf'id="{name}-count">(\d+)<', html).group(1))


def counts(app) -> dict[str, int]:
    return Outbox(app.extensions["state_storage"]).counts()


def parked_and_dead(app, ghl) -> None:
    """call-1 and call-2: the note parked (GHL daily limit); call-3: the note dead (422)."""
    for call_id, failure in (("call-1", DAILY_LIMIT_SPENT), ("call-2", DAILY_LIMIT_SPENT),
                             ("call-3", (422, {}))):
        ghl.fail_next(1, *failure)
        assert post(app, report(call_id)).status_code == 200
    assert ghl.notes == []


# Access
def test_every_admin_route_is_404_without_admin_token(make_app):
    client = make_app(ADMIN_TOKEN=None).test_client()
    for method, path in (("GET", "/"), ("GET", "/login"), ("POST", "/login"),
                         ("POST", "/logout"), ("POST", "/admin/retry")):
        response = client.open(path, method=method, headers=basic())
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"] == "not_found"


def test_no_credentials_is_401_with_a_basic_challenge(make_app):
    response = make_app().test_client().get("/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="vapi-bridge"'
    assert 'name="password"' in response.get_data(as_text=True)  # the sign-in form instead


def test_basic_auth_wrong_and_right_token(make_app):
    client = make_app().test_client()
    for wrong in (basic("nope"), basic(TOKEN + "x"), basic(""),
                  {"Authorization": f"Bearer {TOKEN}"}):
        assert client.get("/", headers=wrong).status_code == 401
    for user in ("admin", "", "someone-else"):
        response = client.get("/", headers=basic(user=user))
        assert response.status_code == 200
        assert 'id="storage"' in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_login_form_sets_a_session_cookie_then_the_page_loads_without_basic(make_app):
    client = make_app().test_client()
    form = client.get("/login")
    assert form.status_code == 200
    token = csrf(form.get_data(as_text=True))

    wrong = client.post("/login", data={"password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong password" in wrong.get_data(as_text=True)
    assert client.get("/").status_code == 401

    response = client.post("/login", data={"password": TOKEN, "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/")
    assert page.status_code == 200 and "Sign out" in page.get_data(as_text=True)

    logout_token = csrf(page.get_data(as_text=True))
    assert client.post("/logout").status_code == 400  # no CSRF token: still signed in
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": logout_token}).status_code == 303
    assert client.get("/").status_code == 401


def test_login_without_csrf_token_is_refused(make_app):
    client = make_app().test_client()
    client.get("/login")
    response = client.post("/login", data={"password": TOKEN})
    assert response.status_code == 400
    assert client.get("/").status_code == 401


@pytest.mark.parametrize("https", [{"base_url": "https://localhost"},
                                   {"headers": {"X-Forwarded-Proto": "https"}}])
def test_session_cookie_is_secure_over_https(make_app, https):
    client = make_app().test_client()
    token = csrf(client.get("/login", **https).get_data(as_text=True))
    response = client.post("/login", data={"password": TOKEN, "csrf_token": token}, **https)
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_new_admin_token_ends_old_sessions(make_app):
    old = make_app().test_client()
    token = csrf(old.get("/login").get_data(as_text=True))
    old.post("/login", data={"password": TOKEN, "csrf_token": token})
    cookie = old.get_cookie("session").value
    rotated = make_app(ADMIN_TOKEN="another-token-for-admin").test_client()
    rotated.set_cookie("session", cookie)
    assert rotated.get("/").status_code == 401


def sign_in(client, password: str = TOKEN):
    """The /login form, as a browser fills it in."""
    token = csrf(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"password": password, "csrf_token": token})


def test_logout_revokes_the_session_so_an_old_cookie_opens_nothing(make_app):
    app = make_app()
    browser, other_browser = app.test_client(), app.test_client()
    assert sign_in(browser).status_code == 303
    assert sign_in(other_browser).status_code == 303
    cookie = browser.get_cookie("session").value
    page = browser.get("/")
    assert page.status_code == 200
    logout = browser.post("/logout", data={"csrf_token": csrf(page.get_data(as_text=True))})
    assert logout.status_code == 303

    replayed = app.test_client()  # someone who kept a copy of the cookie
    replayed.set_cookie("session", cookie)
    assert replayed.get("/").status_code == 401
    assert other_browser.get("/").status_code == 200  # only that session ended


def test_signing_in_again_revokes_the_previous_session(make_app):
    app = make_app()
    browser = app.test_client()
    sign_in(browser)
    first = browser.get_cookie("session").value
    sign_in(browser)
    assert browser.get("/").status_code == 200
    replayed = app.test_client()
    replayed.set_cookie("session", first)
    assert replayed.get("/").status_code == 401


def test_frames_are_denied_beside_the_csp(make_app):
    client = make_app().test_client()
    for response in (client.get("/", headers=basic()), client.get("/login"), client.get("/")):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_store_down_form_sign_in_says_to_use_basic(make_app):
    client = make_app(DOWN, STATE_STORAGE_FALLBACK="none").test_client()
    response = sign_in(client)
    assert response.status_code == 503
    assert "sign in with HTTP Basic instead" in response.get_data(as_text=True)
    assert client.get("/").status_code == 401
    assert client.get("/", headers=basic()).status_code == 200  # Basic needs no store


# Sign-in attempts: limited per address, in the store
ADDRESS = "203.0.113.7"


def client_at(app, address: str = ADDRESS):
    """A browser at ``address`` (what request.remote_addr gives the app)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def fail(client, times: int, how: str = "form") -> None:
    for _ in range(times):
        response = (sign_in(client, "wrong-password") if how == "form"
                    else client.get("/", headers=basic("wrong-password")))
        assert response.status_code == 401


def assert_refused(response) -> None:
    assert response.status_code == 429
    assert 295 <= int(response.headers["Retry-After"]) <= 300  # the window began just now
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert "WWW-Authenticate" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"


@BACKENDS
def test_form_sign_in_is_refused_after_10_failures_even_with_the_right_token(make_app,
                                                                             backend_env):
    client = client_at(make_app(backend_env))
    fail(client, 10)
    assert_refused(sign_in(client))  # the right token: not even compared now
    assert_refused(client.get("/", headers=basic()))
    assert client.get("/").status_code == 401  # no session was opened


@BACKENDS
def test_basic_sign_in_is_limited_and_shares_the_count_with_the_form(make_app, backend_env):
    client = client_at(make_app(backend_env))
    fail(client, 5, "basic")
    fail(client, 5, "form")
    assert_refused(client.get("/", headers=basic()))


@BACKENDS
def test_the_limit_is_per_address_and_success_clears_only_its_own(make_app, backend_env):
    app = make_app(backend_env)
    first = client_at(app)
    second = client_at(app, "2001:db8::1")
    fail(first, 9)
    fail(second, 10)
    assert sign_in(first).status_code == 303  # clears the first address's count...
    fail(first, 10)
    assert_refused(second.get("/", headers=basic()))  # ...not the second's
    assert_refused(sign_in(first))
    assert_refused(client_at(app).get("/", headers=basic()))
    assert first.get("/").status_code == 200  # a live session is no sign-in attempt


@pytest.mark.parametrize("backend_env", ["redis"], indirect=True)
def test_the_limit_holds_across_two_workers_sharing_redis(make_app, backend_env, redis_client,
                                                          prefix):
    workers = [client_at(make_app(backend_env)) for _ in range(2)]
    for n in range(10):
        fail(workers[n % 2], 1, "basic" if n % 3 else "form")
    for worker in workers:
        assert_refused(worker.get("/", headers=basic()))
    keys = redis_client.keys(f"{prefix}:signin-attempts:*")
    assert len(keys) == 1 and "203.0.113.7" not in keys[0]  # the address is hashed

    redis_client.expire(keys[0], 1)  # the window frees
    time.sleep(1.2)
    assert workers[1].get("/", headers=basic()).status_code == 200


# What the page shows
@BACKENDS
def test_page_shows_counts_jobs_and_recent_calls_with_their_delivery(make_app, backend_env,
                                                                     integrations_env, ghl):
    app = make_app(integrations_env, backend_env)
    parked_and_dead(app, ghl)
    assert counts(app)["parked"] == 2 and counts(app)["dead"] == 1

    html = app.test_client().get("/", headers=basic()).get_data(as_text=True)
    assert (count(html, "parked"), count(html, "dead"), count(html, "due")) == (2, 1, 0)
    parked = re.search(r'<table id="parked-jobs">.*?</table>', html, re.S).group(0)
    dead = re.search(r'<table id="dead-jobs">.*?</table>', html, re.S).group(0)
    assert "call-1" in parked and "call-2" in parked and "call-3" not in parked
    assert "call-3" in dead and "HTTP 422" in dead

    assert html.index('id="call-call-3"') < html.index('id="call-call-1"')  # newest first
    first = row(html, "call-1")
    assert re.search(r'class="step-note"><div>\s*<span class="status warn"\s+'
                     r'title="ghl: HTTP 429', first)
    assert re.search(r'class="step-slack"><div>\s*<span class="status ok"', first)
    assert re.search(r'class="step-tags"><div>\s*<span class="status muted"\s+'
                     r'title="no tags for this call">skipped', first)
    assert re.search(r'class="step-note"><div>\s*<span class="status bad"[^>]*>dead',
                     row(html, "call-3"))
    assert ">default<" in first and ">completed<" in first and ">2:30<" in first
    assert "2026-11-25 10:02 UTC" in first


def test_clients_and_integrations_without_secrets(make_app, integrations_env):
    clients = ('[{"name": "North", "assistant_ids": ["a1", "a2"], "ghl_api_key": "pit-north",'
               ' "ghl_location_id": "loc-north"}]')
    app = make_app(integrations_env, CLIENTS_JSON=clients, WEBHOOK_TOKEN="hook-token")
    html = app.test_client().get("/", headers=basic()).get_data(as_text=True)
    clients_html = re.search(r'<section id="clients">.*?</section>', html, re.S).group(0)
    north = re.search(r"<tr>\s*<td data-label=\"Client\">North</td>.*?</tr>", clients_html,
                      re.S).group(0)
    assert re.findall(r">(set|not set)<", north) == ["set", "not set", "set"]
    assert '"Assistants">2<' in north
    assert re.search(r'<section id="auth">.*?<p>token</p>', html, re.S)
    for secret in ("pit-north", "pit-default", "xoxb-default", "vapi-test-key", "hook-token",
                   TOKEN):
        assert secret not in html


def test_phone_numbers_are_masked(make_app, integrations_env, ghl):
    app = make_app(integrations_env)
    post(app, report("call-1"))
    html = app.test_client().get("/", headers=basic()).get_data(as_text=True)
    assert "•••0123" in row(html, "call-1")
    for digits in (PHONE, PHONE[1:], PHONE[2:], "555-0123", "5550123"):
        assert digits not in html


# Retry, behind CSRF
@BACKENDS
def test_retry_needs_the_csrf_token_then_drains_parked_and_dead(make_app, backend_env,
                                                                integrations_env, ghl):
    app = make_app(integrations_env, backend_env)
    parked_and_dead(app, ghl)
    client = app.test_client()
    token = csrf(client.get("/", headers=basic()).get_data(as_text=True))

    for form in ({}, {"csrf_token": "forged"}, {"csrf_token": ""}):
        response = client.post("/admin/retry", data=form, headers=basic())
        assert response.status_code == 400 and "CSRF" in response.get_json()["message"]
    other_browser = app.test_client()  # signed in, but with a session of its own
    other_browser.get("/", headers=basic())
    assert other_browser.post("/admin/retry", data={"csrf_token": token},
                              headers=basic()).status_code == 400
    assert ghl.notes == [] and counts(app) == {"parked": 2, "dead": 1, "due": 0}

    response = client.post("/admin/retry", data={"csrf_token": token}, headers=basic())
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert sorted(note["contact_id"] for note in ghl.notes) == ["ghl-contact-7"] * 2
    assert counts(app) == {"parked": 0, "dead": 1, "due": 0}
    html = client.get("/", headers=basic()).get_data(as_text=True)
    assert "Retried parked jobs: delivered=2, parked=0, dead=0" in html
    assert (count(html, "parked"), count(html, "dead")) == (0, 1)
    assert re.search(r'class="step-note"><div>\s*<span class="status ok"', row(html, "call-1"))

    response = client.post("/admin/retry", data={"csrf_token": token, "dead": "1"},
                           headers=basic())
    assert response.status_code == 303
    assert len(ghl.notes) == 3 and counts(app) == {"parked": 0, "dead": 0, "due": 0}
    html = client.get("/", headers=basic()).get_data(as_text=True)
    assert "Retried dead letters: delivered=1" in html
    assert re.search(r'class="step-note"><div>\s*<span class="status ok"', row(html, "call-3"))


def test_retry_after_login_uses_the_session_token(make_app, integrations_env, ghl):
    app = make_app(integrations_env)
    parked_and_dead(app, ghl)
    client = app.test_client()
    login_token = csrf(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"password": TOKEN, "csrf_token": login_token})
    token = csrf(client.get("/").get_data(as_text=True))
    assert client.post("/admin/retry", data={"csrf_token": token}).status_code == 303
    assert len(ghl.notes) == 2 and counts(app)["parked"] == 0


def test_retry_needs_credentials_too(make_app, integrations_env, ghl):
    app = make_app(integrations_env)
    parked_and_dead(app, ghl)
    client = app.test_client()
    token = csrf(client.get("/", headers=basic()).get_data(as_text=True))
    assert client.post("/admin/retry", data={"csrf_token": token}).status_code == 401
    assert ghl.notes == [] and counts(app)["parked"] == 2


# A store that is down
DOWN = {"REDIS_URL": "redis://127.0.0.1:1/0"}


def test_store_down_without_fallback_shows_unavailable_and_never_500(make_app):
    client = make_app(DOWN, STATE_STORAGE_FALLBACK="none").test_client()
    page = client.get("/", headers=basic())
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "The state store is unavailable" in html and 'id="parked-count"' not in html
    assert re.search(r"Backend</dt><dd>redis", html) and ">unavailable<" in html

    response = client.post("/admin/retry", data={"csrf_token": csrf(html)}, headers=basic())
    assert response.status_code == 303
    html = client.get("/", headers=basic()).get_data(as_text=True)
    assert "Store unavailable: the parked jobs were not retried." in html


def test_store_down_with_the_memory_fallback_says_what_it_shows(make_app):
    client = make_app(DOWN).test_client()
    page = client.get("/", headers=basic())
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and ">unavailable<" in html
    assert "serving from its in-process memory stand-in" in " ".join(html.split())
    assert count(html, "parked") == 0  # the stand-in's (empty) outbox
    response = client.post("/admin/retry", data={"csrf_token": csrf(html), "dead": "1"},
                           headers=basic())
    assert response.status_code == 303
    html = client.get("/", headers=basic()).get_data(as_text=True)
    assert "retried this process&#39;s in-memory dead letters only" in html


def test_behind_trusted_proxies_the_limit_counts_each_forwarded_address(make_app):
    def via_proxy(app, forwarded: str):
        client = client_at(app, "10.0.0.2")  # every request arrives from the proxy
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
        return client

    proxied = make_app(TRUSTED_PROXIES="1")
    fail(via_proxy(proxied, "198.51.100.1"), 10)
    assert_refused(via_proxy(proxied, "198.51.100.1").get("/", headers=basic()))
    assert via_proxy(proxied, "198.51.100.2").get("/", headers=basic()).status_code == 200
    # Without TRUSTED_PROXIES the header is anyone's to write: one count, the proxy's.
    direct = make_app()
    fail(via_proxy(direct, "198.51.100.1"), 10)
    assert_refused(via_proxy(direct, "198.51.100.2").get("/", headers=basic()))


@pytest.mark.parametrize("value", ["-1", "x", "6"])
def test_trusted_proxies_must_be_a_small_count(value):
    from vapi_bridge.config import ConfigError

    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app({"TRUSTED_PROXIES": value})
