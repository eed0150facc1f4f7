"""Loyalty discount: after a number of completed visits, a client's next booking is discounted.

Every ``visits`` completed visits earn one reward: ``percent`` off the next booking. A reward is
used by the booking that carries it, and given back if that booking is cancelled. The count
comes from the business's own history of the client (``ctx.data.client_bookings``), so the
plugin needs that history intact: it cannot be on beside a plugin that deletes old bookings.
"""

from bookwell.hooks import Discount, Manifest, Setting, hookimpl

# The label every reward carries: how a later booking recognises the rewards already used. It
# does not name the percent, so that changing the setting does not hand out rewards again.
REWARD = "Loyalty reward"

MANIFEST = Manifest(
    name="loyalty",
    title="Loyalty discount",
    description="Reward regular clients: after a number of completed visits, their next "
    "booking is discounted.",
    version="1.0.0",
    category="Marketing",
    author="Bookwell examples",
    settings=(
        Setting(
            "visits",
            "int",
            5,
            "Visits per reward",
            help="completed visits that earn a reward",
            min=1,
            max=100,
        ),
        Setting(
            "percent",
            "int",
            10,
            "Discount (%)",
            help="taken off the price of the rewarded booking",
            min=1,
            max=100,
        ),
    ),
    needs=("intact_history",),
)


def rewards_due(history, visits: int) -> int:
    """Rewards earned by the client's ``history`` (their bookings, any status) and not used."""
    completed = sum(1 for booking in history if booking.status == "completed")
    used = sum(
        1
        for booking in history
        if booking.discount_label == REWARD and booking.status != "cancelled"
    )
    return completed // visits - used


@hookimpl
def booking_discount(ctx, settings):
    """Offer the reward when the client has one due; core keeps the largest discount offered,
    so a reward that loses to a larger discount stays due for the next booking."""
    history = ctx.data.client_bookings(ctx.booking.client_email)
    if rewards_due(history, settings["visits"]) > 0:
        return Discount(REWARD, percent=settings["percent"])
    return None
