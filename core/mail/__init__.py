"""Booking e-mail: composed in the booking's transaction, kept in the outbox, sent by a job.

``compose`` builds the messages, ``outbox`` stores and delivers them, ``transport`` hands one to
SMTP or to an ``.eml`` file, and :func:`booking_mail` ties them to the booking lifecycle (with
the plugins' say on each message). ``bookwell mail`` is :mod:`bookwell.core.cli.mail`.

May use: :mod:`bookwell.core.pluginhost`, :mod:`bookwell.core.storage` (the outbox table, and
the job queue to ask for delivery now), :mod:`bookwell.core.foundation`.
"""

from __future__ import annotations

from bookwell.core.mail.compose import OutgoingMessage
from bookwell.core.mail.lifecycle import booking_mail, kick
from bookwell.core.mail.outbox import DeliveryReport, deliver_due, enqueue

__all__ = ["DeliveryReport", "OutgoingMessage", "booking_mail", "deliver_due", "enqueue", "kick"]
