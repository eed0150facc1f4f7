"""The front desk's staff page: its callback list (phone numbers encrypted with the business's
key, found again by their digest) and who accepted the house rules; through the staff pages."""

import re

import pytest
import sqlalchemy as sa

PAGE = "/admin/salon/front_desk/"
PHONE = "+33 6 12 34 56 78"


@pytest.fixture
def front_desk(enable_plugin):
    return enable_plugin("front_desk")


@pytest.fixture
def stored(database_url):
    """The callback rows as the database holds them, for every business."""
    url = sa.make_url(database_url)
    if url.drivername == "postgresql":  # SQLAlchemy's default driver for it is not installed
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)

    def read():
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT tenant_id, name, phone, phone_digest, note, asked, done_at"
                    " FROM front_desk_callbacks ORDER BY id"
                )
            )
            return [row._asdict() for row in rows]

    yield read
    engine.dispose()


def add(member, name="Bob", phone=PHONE, note="About Tuesday", business="salon"):
    return member.submit(
        f"/admin/{business}/front_desk/", {"name": name, "phone": phone, "note": note}
    )


def listed(member, business="salon"):
    """The rows of the callback table on the page: (client, phone, note, asked, taken by)."""
    answer = member.pages.get(f"/admin/{business}/front_desk/")
    assert answer.status_code == 200
    table = answer.get_data(as_text=True).partition('class="front-desk-callbacks"')[2]
    table = table.partition("</table>")[0]
    rows = re.findall(r"<tr>\s*((?:<td>.*?</td>\s*){5})", table, re.S)
    return [tuple(re.findall(r"<td>(.*?)</td>", row)) for row in rows]


def callback_ids(member, business="salon"):
    page = member.pages.get(f"/admin/{business}/front_desk/").get_data(as_text=True)
    return [int(found) for found in re.findall(r"/front_desk/callbacks/(\d+)/done", page)]


def test_the_staff_menu_leads_to_the_page_for_every_role(
    front_desk, owner, manager, staff_member, receptionist
):
    for member in (owner, manager, staff_member, receptionist):
        assert f'href="{PAGE}"' in member.pages.get("/admin/salon/").get_data(as_text=True)
        assert member.pages.get(PAGE).status_code == 200


def test_a_callback_is_listed_with_its_phone_stored_encrypted(front_desk, receptionist, stored):
    answer = add(receptionist)
    assert answer.status_code == 303
    assert listed(receptionist) == [
        ("Bob", "+33612345678", "About Tuesday", "1", "receptionist@example.com")
    ]
    [row] = stored()
    assert "612345678" not in row["phone"]
    assert re.fullmatch(r"[0-9a-f]{64}", row["phone_digest"])


def test_the_same_number_is_found_again_by_its_digest(front_desk, staff_member, stored):
    add(staff_member)
    add(staff_member, name="Bob Martin", phone="+33 (6) 12-34-56-78", note="")
    add(staff_member, name="Eve", phone="0612345678")  # another number
    assert [(name, phone, asked) for name, phone, _, asked, _ in listed(staff_member)] == [
        ("Bob", "+33612345678", "2"),
        ("Eve", "0612345678", "1"),
    ]
    assert [row["note"] for row in stored()] == ["About Tuesday", "About Tuesday"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "Give the client&#39;s name"),
        ({"phone": "call me"}, "Give a phone number"),
        ({"phone": "12345"}, "Give a phone number"),
        ({"note": "x" * 501}, "under 500 characters"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    front_desk, staff_member, stored, fields, message
):
    answer = staff_member.submit(PAGE, {"name": "Bob", "phone": PHONE, "note": "", **fields})
    assert answer.status_code == 422
    assert message in answer.get_data(as_text=True)
    # Beside its field, not as the layout's alert naming the field.
    assert 'role="alert">' not in answer.get_data(as_text=True)
    assert stored() == []


def test_a_form_without_its_csrf_token_is_refused(front_desk, staff_member, stored):
    answer = staff_member.pages.post(PAGE, data={"name": "Bob", "phone": PHONE})
    assert answer.status_code == 400
    assert stored() == []


def test_called_back_leaves_the_list(front_desk, staff_member, stored, clock):
    add(staff_member)
    [callback] = callback_ids(staff_member)
    done = f"/admin/salon/front_desk/callbacks/{callback}/done"
    # The button's form is on the page: its CSRF token comes from there.
    assert staff_member.submit(done, {}, form_on=PAGE).status_code == 303
    assert listed(staff_member) == []
    assert stored()[0]["done_at"] is not None
    assert staff_member.submit(done, {}, form_on=PAGE).status_code == 404
    add(staff_member)  # the same number again: a new callback, since the first was done
    assert [asked for *_, asked, _ in listed(staff_member)] == ["1"]


def test_nobody_signed_in_is_sent_to_the_login_page(app, front_desk):
    answer = app.test_client().get(PAGE)
    assert answer.status_code == 302
    assert "/admin/salon/login" in answer.headers["Location"]


def test_a_business_that_has_not_enabled_it_sees_no_difference(owner, staff_member):
    assert "front_desk" not in owner.pages.get("/admin/salon/").get_data(as_text=True)
    assert owner.pages.get(PAGE).status_code == 404
    assert staff_member.pages.post(PAGE, data={"name": "Bob", "phone": PHONE}).status_code == 404


def test_another_business_never_sees_the_callbacks(
    front_desk, staff_member, enable_plugin, second_business, staff_login, stored
):
    enable_plugin("front_desk", business=second_business)
    spa_staff = staff_login("staff", business=second_business)
    add(staff_member)
    [salon_callback] = callback_ids(staff_member)
    assert listed(spa_staff, "spa") == []
    done = f"/admin/spa/front_desk/callbacks/{salon_callback}/done"
    assert spa_staff.submit(done, {}, form_on="/admin/spa/front_desk/").status_code == 404
    assert listed(staff_member)[0][0] == "Bob"
    # Nor the salon's staff the spa's page.
    assert staff_member.pages.get("/admin/spa/front_desk/").status_code == 404
    # The same number at the spa: its own key, so its own digest and its own callback.
    add(spa_staff, business="spa")
    salon_row, spa_row = stored()
    assert salon_row["phone_digest"] != spa_row["phone_digest"]
    assert [asked for *_, asked, _ in listed(staff_member)] == ["1"]
