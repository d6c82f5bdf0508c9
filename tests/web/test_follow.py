"""The ticket-follow page without a browser: languages, states, what it shows and hides, who may
open it, and the feedback hook."""
from __future__ import annotations


from kiosk import services
from kiosk.usecases import insight


def follow(client, ticket_id: str, **kwargs):
    """GET the phone page of a ticket."""
    return client.get(f"/t/{ticket_id}", **kwargs)


def test_page_in_the_tickets_language_with_a_switch(client, centre):
    """Sorani ticket: Sorani page, right to left; ?lang=en switches; no session cookie is set."""
    ticket = services.issue_ticket(centre, service="A", lang="ckb")
    page = follow(client, ticket["id"])
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'lang="ckb" dir="rtl"' in body
    assert f'href="/t/{ticket["id"]}?lang=en"' in body and f'href="/t/{ticket["id"]}?lang=ar"' in body
    assert "Set-Cookie" not in page.headers
    english = follow(client, ticket["id"], query_string={"lang": "en"}).get_data(as_text=True)
    assert 'lang="en" dir="ltr"' in english and "You are next" in english


def test_unknown_ticket_is_a_404_in_the_phones_language(client):
    """An English phone gets the English "does not exist" page, not the centre's default Arabic."""
    page = follow(client, "01HZZZZZZZZZZZZZZZZZZZZZZZ", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert page.status_code == 404 and "This page or item does not exist." in page.get_data(as_text=True)
    sorani = follow(client, "nope", headers={"Accept-Language": "ckb"}).get_data(as_text=True)
    assert 'lang="ckb"' in sorani


def test_reveals_nothing_about_other_citizens(client, centre):
    """Other tickets' numbers and services never appear, whatever the state."""
    others = [services.issue_ticket(centre, service=code, lang="en") for code in ("A", "B")]
    mine = services.issue_ticket(centre, service="C", lang="en")
    services.call_ticket(centre, others[0]["id"], counter="1", by="demo")
    waiting = follow(client, mine["id"]).get_data(as_text=True)
    services.call_ticket(centre, mine["id"], counter="3", by="demo")
    called = follow(client, mine["id"]).get_data(as_text=True)
    for body in (waiting, called):
        assert all(other["number"] not in body for other in others)
    assert "Go to counter <bdi dir=\"ltr\">3</bdi> now" in called


def test_open_from_outside_the_staff_network(app, client, centre):
    """Phones are on the citizens' Wi-Fi, outside STAFF_NETWORKS: the page and its stream answer."""
    app.config["STAFF_NETWORKS"] = ()
    ticket = services.issue_ticket(centre, service="A", lang="en")
    outside = {"REMOTE_ADDR": "198.51.100.7"}
    assert follow(client, ticket["id"], environ_base=outside).status_code == 200
    assert client.get(f"/events/ticket/{ticket['id']}", environ_base=outside).status_code == 503  # no stream hub here
    assert client.get("/admin", environ_base=outside).status_code == 403


def test_live_refresh_gets_only_its_block(client, centre):
    """htmx re-fetches the `follow` block alone (a few hundred bytes), a plain GET the whole page."""
    ticket = services.issue_ticket(centre, service="B", priority="pregnancy", lang="en")
    block = follow(client, ticket["id"], headers={"HX-Request": "true"}).get_data(as_text=True)
    assert block.lstrip().startswith('<section class="phone-ticket')
    assert "Priority ticket: Pregnancy" in block and "<html" not in block


def test_states_after_the_call(client, centre):
    """Serving, finished, not present, on hold and transferred each say what to do."""
    ticket = services.issue_ticket(centre, service="A", lang="en")
    services.call_ticket(centre, ticket["id"], counter="2", by="demo")
    services.act(centre, ticket["id"], "start", by="demo")
    assert "You are being served at counter" in follow(client, ticket["id"]).get_data(as_text=True)
    services.act(centre, ticket["id"], "finish", by="demo")
    done = follow(client, ticket["id"]).get_data(as_text=True)
    assert "Your visit is finished. Thank you." in done and f'href="/t/{ticket["id"]}/feedback"' in done
    other = services.issue_ticket(centre, service="A", lang="en")
    services.call_ticket(centre, other["id"], counter="2", by="demo")
    services.act(centre, other["id"], "no_show", by="demo")
    assert "did not come" in follow(client, other["id"]).get_data(as_text=True)


def test_feedback_is_offered_once_the_visit_is_finished_until_it_is_given(client, centre):
    """A finished ticket's page links to the feedback question (`feedback.ticket`), not before,
    and not again once the citizen has answered."""
    ticket = services.issue_ticket(centre, service="C", lang="en")
    services.call_ticket(centre, ticket["id"], counter="1", by="demo")
    assert 'id="feedback"' not in follow(client, ticket["id"]).get_data(as_text=True)
    services.act(centre, ticket["id"], "start", by="demo")
    services.act(centre, ticket["id"], "finish", by="demo")
    assert f'href="/t/{ticket["id"]}/feedback" id="feedback"' in follow(client, ticket["id"]).get_data(as_text=True)
    insight.give_feedback(centre, ticket["id"], score=4)
    page = follow(client, ticket["id"]).get_data(as_text=True)
    assert 'id="feedback"' not in page and "/feedback" not in page
    assert 'id="feedback-given"' in page and "Thank you for your answer." in page
