"""Booking e-mail: composed in the booking's transaction, kept in the outbox, sent by a job.

``compose`` builds the messages, ``outbox`` stores and delivers them, ``transport`` hands one to
SMTP or to an ``.eml`` file, and :func:`booking_mail` ties them to the booking lifecycle.
"""

from __future__ import annotations

from .compose import OutgoingMessage
from .lifecycle import booking_mail, kick
from .outbox import DeliveryReport, deliver_due, enqueue

__all__ = ["DeliveryReport", "OutgoingMessage", "booking_mail", "deliver_due", "enqueue", "kick"]
