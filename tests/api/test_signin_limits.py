"""The workbench's sign-in form checks keys as the API does: with the client's address, and
refused alike (429, said so) once a key id or an address has failed too often."""

from __future__ import annotations

import re

from tests.api.conftest import Api


def _sign_in(api: Api, key: str):  # type: ignore[no-untyped-def]
    form = api.client.get("/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    return api.client.post(
        "/sign-in",
        data={"csrf": token.group(1), "api_key": key, "next": "/queue"},
        follow_redirects=False,
    )


def test_failed_sign_ins_are_limited_and_the_form_says_why(api: Api) -> None:
    assert _sign_in(api, api.keys["analyst"]).status_code == 303  # verified once
    prefix = api.keys["analyst"].rsplit("_", 1)[0]
    # The analyst's key id with wrong secrets, each a new guess (a repeated one is answered
    # from the cache of wrong keys, without a check to count).
    answers = [_sign_in(api, f"{prefix}_{guess:032d}") for guess in range(12)]
    assert answers[0].status_code == 401 and "unknown" in answers[0].text
    assert answers[-1].status_code == 429
    assert "Too many failed sign-ins" in answers[-1].text
    assert int(answers[-1].headers["Retry-After"]) > 0
    # A key verified before is never limited: guessing at its id cannot lock its holder out.
    assert _sign_in(api, api.keys["analyst"]).status_code == 303


def test_a_key_without_a_workbench_role_is_told_so(api: Api) -> None:
    answer = _sign_in(api, api.keys["ingest"])
    assert answer.status_code == 401 and "neither the analyst nor the admin role" in answer.text
