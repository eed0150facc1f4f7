"""E-mail: composed with the change it announces, kept in the outbox, sent by a job.

``compose`` builds the messages (booking changes, client accounts' links, plugins' own; the
templates are ``core/web/templates/mail/``), ``dispatch`` passes each through the plugins'
``filter_message`` (:func:`booking_messages` for the booking lifecycle, composed after its
commit into the placeholder its transaction wrote) into the outbox and asks for delivery now
(``kick``), ``outbox`` stores and delivers them, ``transport`` hands one to SMTP or to an
``.eml`` file. ``bookwell mail`` is :mod:`bookwell.core.cli.mail`.

May use: :mod:`bookwell.core.pluginhost`, :mod:`bookwell.core.storage` (the outbox table, and
the job queue to ask for delivery now), :mod:`bookwell.core.foundation`.
"""

from __future__ import annotations

from bookwell.core.mail.compose import OutgoingMessage
from bookwell.core.mail.dispatch import booking_messages, kick
from bookwell.core.mail.outbox import DeliveryReport, deliver_due, enqueue

__all__ = [
    "DeliveryReport",
    "OutgoingMessage",
    "booking_messages",
    "deliver_due",
    "enqueue",
    "kick",
]
