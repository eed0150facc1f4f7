"""What clients expect on a booking page (issue 16, point 3), read from the rendered pages: the
business's address and opening hours, a step indicator and a running summary, the price, links
to add the booking to a calendar (and its .ics), the client's own time zone, the first free time
and today marked on the calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import icalendar
from booking_pages import BOOK, book_through_pages, link_to, links, page_tree, post_details
from sqlalchemy import delete, select

from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Provider, Service, Tenant, TimeOff, WorkingHours


def update(app, model, row_id, **fields):
    with db.write_transaction(app) as session:
        row = session.get(model, row_id)
        for name, value in fields.items():
            setattr(row, name, value)


def bookings(app) -> list[Booking]:
    with db.fresh_session(app) as session:
        return list(session.scalars(select(Booking).order_by(Booking.id)))


def query(href: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(href).query).items()}


def away(app, provider_ids, first: date, days: int):
    """Both providers off from ``first`` (Paris midnight) for ``days`` days."""
    starts = datetime.combine(first, time(0), tzinfo=UTC) - timedelta(hours=1)
    with db.write_transaction(app) as session:
        for provider_id in provider_ids:
            session.add(
                TimeOff(
                    provider_id=provider_id,
                    starts_at=starts,
                    ends_at=starts + timedelta(days=days),
                    reason="holiday",
                )
            )


# --- the first page --------------------------------------------------------------------------


def test_the_first_page_shows_the_address_and_the_opening_hours(app, client, business):
    update(app, Tenant, business.tenant_id, address="1 rue de la Paix, Paris", phone="01 23 45")
    with db.write_transaction(app) as session:
        # Nobody works on Sundays; Ana also opens on Saturday evenings; Ben's Monday runs on
        # from Ana's (one opening, 09:00-19:00); a provider who left does not count.
        session.execute(delete(WorkingHours).where(WorkingHours.weekday == 6))
        session.add(
            WorkingHours(
                provider_id=business.provider_id, weekday=5, starts=time(18), ends=time(20)
            )
        )
        session.add(
            WorkingHours(
                provider_id=business.second_provider_id, weekday=0, starts=time(17), ends=time(19)
            )
        )
        gone = Provider(tenant_id=business.tenant_id, name="Gone", active=False)
        session.add(gone)
        session.flush()
        session.add(WorkingHours(provider_id=gone.id, weekday=6, starts=time(8), ends=time(9)))
    page = page_tree(client.get(f"{BOOK}/"))
    info = page.find("section", class_="business-info")
    assert "1 rue de la Paix, Paris" in info.find("address").text()
    assert info.find("a", href="tel:012345").text() == "01 23 45"
    hours = {
        row.find("th").text(): row.find("td").text()
        for row in info.find("table", class_="opening-hours").find_all("tr")
    }
    assert hours == {
        "Monday": "09:00–19:00",
        "Tuesday": "09:00–17:00",
        "Wednesday": "09:00–17:00",
        "Thursday": "09:00–17:00",
        "Friday": "09:00–17:00",
        "Saturday": "09:00–17:00, 18:00–20:00",
        "Sunday": "Closed",
    }
    assert "Europe/Paris" in info.text()


def test_a_business_without_hours_or_address_shows_no_empty_box(app, client, business):
    with db.write_transaction(app) as session:
        session.execute(delete(WorkingHours))
    page = page_tree(client.get(f"{BOOK}/"))
    assert page.find_all("section", class_="business-info") == []


# --- steps and summary -----------------------------------------------------------------------


def steps_of(page):
    nav = page.find("nav", aria_label="Booking steps")
    return nav.find_all("li")


def current_step(page) -> str:
    [current] = [step for step in steps_of(page) if step.attrs.get("aria-current") == "step"]
    return current.find("span", class_="step-name").text()


def summary_of(page) -> dict[str, str]:
    section = page.find("section", class_="running-summary")
    return {
        row.find("dt").text(): row.find("dd").text()
        for row in section.find("dl").children
        if not isinstance(row, str)
    }


def test_the_steps_and_the_running_summary_follow_the_flow(app, client, business):
    update(app, Tenant, business.tenant_id, currency="GBP")
    services = client.get(f"{BOOK}/")
    tree = page_tree(services)
    assert current_step(tree) == "Step 1 of 6: Service"
    assert tree.find_all("section", class_="running-summary") == []  # nothing chosen yet

    providers = client.get(link_to(services, f"service={business.service_id}"))
    tree = page_tree(providers)
    assert current_step(tree) == "Step 2 of 6: Who"
    assert summary_of(tree) == {"Service": "Cut", "Price": "£30.00"}
    first = steps_of(tree)[0]
    assert first.find("a").attrs["href"] == f"{BOOK}/"  # a step taken is a way back

    day = client.get(link_to(providers, "/day", f"provider={business.provider_id}"))
    tree = page_tree(day)
    assert current_step(tree) == "Step 3 of 6: Day"
    assert summary_of(tree) == {"Service": "Cut", "With": "Ana", "Price": "£30.00"}
    assert [step.find_all("a") for step in steps_of(tree)[2:]] == [[], [], [], []]  # none ahead

    slots = client.get(link_to(day, "/slots", "date=2027-03-02"))
    tree = page_tree(slots)
    assert current_step(tree) == "Step 4 of 6: Time"
    assert "Tuesday 2 March 2027" in tree.find("h2", class_="day-label").text()

    details = client.get(link_to(slots, "/details", "T10:00"))
    tree = page_tree(details)
    assert current_step(tree) == "Step 5 of 6: Details"
    assert summary_of(tree) == {
        "Service": "Cut",
        "With": "Ana",
        "When": "Tuesday 2 March 2027, 10:00",
        "Price": "£30.00",
    }
    back_to_time = steps_of(tree)[3].find("a").attrs["href"]
    assert query(back_to_time)["date"] == "2027-03-02"

    done = post_details(client, link_to(slots, "/details", "T10:00"))
    tree = page_tree(done)
    assert current_step(tree) == "Step 6 of 6: Done"
    assert all(step.find_all("a") == [] for step in steps_of(tree))  # booked: no way back
    facts = tree.find("dl", class_="facts")
    assert facts.find("dd", class_="summary-service").text() == "Cut"
    assert facts.find("dd", class_="summary-provider").text() == "Ana"
    assert facts.find("dd", class_="summary-time").text() == "Tuesday 2 March 2027, 10:00"
    assert facts.find("dd", class_="price").text() == "£30.00"


def test_anyone_available_is_named_in_the_summary(client, business):
    page = page_tree(client.get(f"{BOOK}/day?service={business.service_id}&provider=any"))
    assert summary_of(page)["With"] == "Anyone available"


def test_a_free_service_shows_no_price(app, client, business):
    update(app, Service, business.service_id, price_cents=0)
    page = page_tree(client.get(f"{BOOK}/day?service={business.service_id}&provider=any"))
    assert "Price" not in summary_of(page)


# --- add to a calendar -----------------------------------------------------------------------


def calendar_links_of(page) -> dict[str, str]:
    section = page_tree(page).find("section", class_="add-to-calendar")
    return {
        name: section.find("a", class_=f"calendar-{name}").attrs["href"]
        for name in ("google", "outlook", "apple")
    }


def test_the_calendar_links_carry_the_bookings_utc_times(app, client, business):
    update(app, Tenant, business.tenant_id, address="1 rue de la Paix, Paris")
    confirmation, manage = book_through_pages(client, business)
    [booking] = bookings(app)
    token = query(manage)["token"]
    for page in (confirmation, client.get(manage)):
        found = calendar_links_of(page)
        google = query(found["google"])
        assert found["google"].startswith("https://calendar.google.com/calendar/render?")
        assert google["action"] == "TEMPLATE"
        assert google["dates"] == "20270302T090000Z/20270302T093000Z"  # 10:00 in Paris
        assert google["text"] == "Cut – Salon"
        assert google["location"] == "1 rue de la Paix, Paris"
        outlook = query(found["outlook"])
        assert found["outlook"].startswith("https://outlook.live.com/calendar/0/deeplink/compose?")
        assert (outlook["startdt"], outlook["enddt"]) == (
            "2027-03-02T09:00:00Z",
            "2027-03-02T09:30:00Z",
        )
        assert outlook["subject"] == "Cut – Salon"
        # The private token goes to the business's own server, never to Google or Microsoft.
        assert token not in found["google"] and token not in found["outlook"]
        assert urlsplit(found["apple"]).path == f"{BOOK}/manage/{booking.reference}/booking.ics"


def test_the_ics_file_is_the_booking_behind_its_token(app, client, business):
    _, manage = book_through_pages(client, business)
    [booking] = bookings(app)
    apple = calendar_links_of(client.get(manage))["apple"]
    answer = client.get(apple)
    assert answer.status_code == 200 and answer.mimetype == "text/calendar"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "attachment" in answer.headers["Content-Disposition"]
    calendar = icalendar.Calendar.from_ical(answer.data)
    assert str(calendar["method"]) == "PUBLISH"
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2027, 3, 2, 9, 30, tzinfo=UTC)
    assert str(event["summary"]) == "Cut – Salon"
    assert str(event["uid"]) == f"{booking.reference}@bookwell"  # the e-mailed invitation's
    assert str(event["status"]) == "CONFIRMED"
    wrong = apple.replace(query(apple)["token"], "wrong")
    assert client.get(wrong).status_code == 404
    assert client.get(apple.replace("/book/salon/", "/book/nobody/")).status_code == 404


def test_a_cancelled_booking_offers_no_calendar_links(app, client, business):
    _, manage = book_through_pages(client, business)
    apple = calendar_links_of(client.get(manage))["apple"]
    update(app, Booking, bookings(app)[0].id, status="cancelled")
    assert page_tree(client.get(manage)).find_all("section", class_="add-to-calendar") == []
    [event] = icalendar.Calendar.from_ical(client.get(apple).data).walk("VEVENT")
    assert str(event["status"]) == "CANCELLED"


# --- the client's own time zone ---------------------------------------------------------------


def test_times_carry_their_instant_for_the_clients_zone(app, client, business):
    confirmation, _ = book_through_pages(client, business)
    tree = page_tree(confirmation)
    assert tree.find("meta", name="bookwell-zone").attrs["content"] == "Europe/Paris"
    when = tree.find("dd", class_="summary-time").find("time")
    assert datetime.fromisoformat(when.attrs["datetime"]) == datetime(2027, 3, 2, 9, tzinfo=UTC)
    assert when.attrs["data-local"] == "full"
    slots = page_tree(
        client.get(f"{BOOK}/slots?service={business.service_id}&provider=any&date=2027-03-03")
    )
    first = slots.find("a", class_="slot").find("time")
    assert (first.text(), first.attrs["data-local"]) == ("09:00", "time")
    assert datetime.fromisoformat(first.attrs["datetime"]) == datetime(2027, 3, 3, 8, tzinfo=UTC)
    # The script that shows them is a static file of the theme (the CSP allows only 'self').
    [script] = tree.find_all("script")
    assert script.children == [] and "defer" in script.attrs
    served = client.get(script.attrs["src"])
    assert served.status_code == 200 and "time[data-local]" in served.text


# --- the first free time -----------------------------------------------------------------------


def first_time_by_hand(client, day_page) -> str:
    """The earliest start a client finds by clicking: the first free day, its first time."""
    calendar = day_page
    while True:
        free = [href for href in links(calendar) if "/slots" in href]
        if free:
            break
        calendar = client.get(link_to(calendar, "month=", "/day"))
        following = [href for href in links(calendar) if "/day" in href and "month=" in href]
        assert following
    times = client.get(free[0])
    return query(link_to(times, "/details"))["start"]


def first_free_link(page) -> str:
    return page_tree(page).find("a", class_="first-free-link").attrs["href"]


def test_the_first_free_time_leads_to_the_earliest_slot(app, client, business):
    day = client.get(f"{BOOK}/day?service={business.service_id}&provider={business.provider_id}")
    shortcut = first_free_link(day)
    assert query(shortcut)["start"] == first_time_by_hand(client, day)
    assert query(shortcut)["provider"] == str(business.provider_id)
    details = client.get(shortcut)
    assert details.status_code == 200  # one click: the details step of that time
    assert "Step 5 of 6: Details" in page_tree(details).find("nav", class_="steps").text()
    page = post_details(client, shortcut)
    assert page.status_code == 200 and bookings(app)[0].starts_at == datetime.fromisoformat(
        query(shortcut)["start"]
    )
    # Now taken: the shortcut moves on to the next free time.
    again = first_free_link(client.get(day.request.url))
    assert query(again)["start"] > query(shortcut)["start"]


def test_the_first_free_time_looks_past_a_full_fortnight(app, client, business):
    away(app, [business.provider_id, business.second_provider_id], date(2027, 3, 1), 16)
    providers = client.get(f"{BOOK}/?service={business.service_id}")
    shortcut = first_free_link(providers)
    assert query(shortcut)["provider"] == "any"
    assert query(shortcut)["start"] == "2027-03-17T09:00:00+01:00"
    day = client.get(f"{BOOK}/day?service={business.service_id}&provider=any")
    assert first_free_link(day) == shortcut == link_to(day, "/details")


def test_no_first_free_time_when_nothing_is_free(app, client, business):
    update(app, Service, business.service_id, horizon_days=5)
    away(app, [business.provider_id, business.second_provider_id], date(2027, 3, 1), 10)
    day = client.get(f"{BOOK}/day?service={business.service_id}&provider=any")
    assert day.status_code == 200
    assert page_tree(day).find_all("a", class_="first-free-link") == []


# --- today on the calendar ---------------------------------------------------------------------


def test_today_is_marked_on_the_calendar(app, client, business, clock):
    url = f"{BOOK}/day?service={business.service_id}&provider=any"
    [today] = page_tree(client.get(url)).find_all(aria_current="date")
    assert today.tag == "a" and today.accessible_name() == "Monday 1 March"
    assert query(today.attrs["href"])["date"] == "2027-03-01"
    assert page_tree(client.get(url + "&month=2027-04")).find_all(aria_current="date") == []
    clock.set(datetime(2027, 3, 9, 22, 30, tzinfo=UTC))  # 23:30 in Paris, nothing left today
    [today] = page_tree(client.get(url)).find_all(aria_current="date")
    assert today.tag == "span" and today.text() == "Tuesday 9 March, no free times"
