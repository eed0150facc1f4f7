"""Sending mail on its way: each message through the plugins' ``filter_message`` into the
outbox (:func:`booking_messages`: what each booking change sends), and the nudge to deliver it
now (:func:`kick`: a thread, or an RQ job named by path)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from rq import Retry

from bookwell.core.foundation import clock
from bookwell.core.mail import compose, outbox
from bookwell.core.pluginhost import host as pluginhost
from bookwell.core.storage import queue
from bookwell.hooks import Context

log = logging.getLogger("bookwell.mail")

# The job that sends every tenant's due mail: named, not imported (it builds its own app).
DELIVER_MAIL_JOB = "bookwell.core.app.jobs.deliver_mail"
# Mail jobs retry on the outbox's own backoff, so that a retry finds the failed messages due.
MAIL_RETRY = Retry(
    max=len(outbox.BACKOFF_MINUTES), interval=[60 * m for m in outbox.BACKOFF_MINUTES]
)


class _Held(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def filtered(
    app: Flask, ctx: Context, enabled: Mapping[str, Mapping[str, Any]], message
) -> compose.OutgoingMessage:
    """Pass ``message`` through every enabled plugin's ``filter_message``, in hook order, each
    seeing the previous one's result; ``None`` leaves it as it was.

    A filter that fails, or answers something other than a message, holds the message: it is
    stored but not sent. A filter may be there to take personal data out of mail (or to add a
    legally required notice), so sending the unfiltered message would fail open; the booking
    itself still goes through, and the held row (``last_error``) says why.
    """
    host = pluginhost.host_of(app)
    # In the hook's order (as pluginhost runs it: the last registered first), one plugin at a
    # time, so that each filter sees the message as the previous one left it.
    order = [
        host.pm.get_name(implementation.plugin)
        for implementation in reversed(host.pm.hook.filter_message.get_hookimpls())
    ]
    for name in order:
        if name not in enabled:
            continue
        try:
            answers = host.contributions(
                "filter_message", ctx, {name: enabled[name]}, message=message
            )
        except pluginhost.PluginFailed as failed:  # already logged with its traceback
            raise _Held(f"held: filter_message of {name} failed: {failed.__cause__!r}") from failed
        for _, answer in answers:
            if not isinstance(answer, compose.OutgoingMessage):
                log.error("plugin %s: filter_message returned %r; message held", name, answer)
                raise _Held(f"held: filter_message of {name} returned {type(answer).__name__}")
            message = answer
    return message


def filtered_or_held(
    app: Flask, ctx: Context, enabled: Mapping[str, Mapping[str, Any]], message
) -> tuple[compose.OutgoingMessage, str | None]:
    """``(filtered message, None)``, or ``(message as it was, why it must be held)`` when a
    filter failed: see :func:`filtered`."""
    try:
        return filtered(app, ctx, enabled, message), None
    except _Held as stop:
        return message, stop.reason


def booking_messages(
    app: Flask,
    event: str,
    facts: compose.BookingFacts,
    *,
    ctx: Context,
    enabled: Mapping[str, Mapping[str, Any]],
) -> list[tuple[compose.OutgoingMessage, str | None]]:
    """The client's message and the provider notices of ``event``, each through the plugins'
    ``filter_message``: ``(message, None)``, or ``(message, why it is held)``. Raises when a
    message cannot be composed. Touches no database: called outside any transaction."""
    messages = [compose.client_message(app, facts, event)]
    messages += compose.provider_messages(app, facts, event)
    return [filtered_or_held(app, ctx, enabled, message) for message in messages]


# A client notices nothing of this delay; a burst of bookings costs a few rounds, not one each.
COALESCE_SECONDS = 0.2


@dataclass
class _Delivery:
    """An app's background delivery thread, and what tells it to stop before its next round."""

    stop: threading.Event
    thread: threading.Thread


_running: dict[int, _Delivery] = {}
_pending: set[int] = set()
_registry = threading.Lock()


def enqueue_mail(app: Flask) -> bool:
    """Queue the delivery of the due mail. With Redis down, log it and return ``False``: the
    mail waits in the outbox and the worker's next tick sends it once Redis is back."""
    return queue.enqueue_from_request(
        app, DELIVER_MAIL_JOB, meanwhile="mail waits in the outbox", retry=MAIL_RETRY
    )


def kick(app: Flask) -> None:
    """Deliver due mail soon: an RQ job with ``REDIS_URL`` (with Redis down, the mail waits in
    the outbox for the worker's next tick), else a background thread. Best effort, never raises.
    With ``MAIL_DELIVERY = "manual"`` nothing happens here and the ticker or ``bookwell tick``
    (or a test) sends."""
    try:
        if app.config.get("MAIL_DELIVERY", "background") != "background":
            return
        if app.config.get("REDIS_URL"):
            enqueue_mail(app)
            return
        with _registry:
            _pending.add(id(app))
            if id(app) in _running:
                return  # the running thread sees the pending mark and goes round again
            stop = threading.Event()
            delivery = _Delivery(
                stop,
                threading.Thread(
                    target=_deliver_loop, args=(app, stop), name="bookwell-mail", daemon=True
                ),
            )
            _running[id(app)] = delivery
        try:
            delivery.thread.start()
        except BaseException:
            with _registry:
                _running.pop(id(app), None)
            raise
    except Exception:
        log.exception("could not start mail delivery")


def wait_until_delivered(app: Flask, timeout: float = 30.0) -> bool:
    """Wait for ``app``'s background delivery, if a thread runs, to send what is due and end;
    ``False`` if it still runs after ``timeout`` seconds."""
    return _join(app, timeout, stop=False)


def stop_delivery(app: Flask, timeout: float = 30.0) -> bool:
    """Stop ``app``'s background delivery: a round under way ends, the next is not run (its
    mail waits in the outbox for the next tick or kick); ``False`` if the thread still runs
    after ``timeout`` seconds. For whoever is about to take the database away (a test's
    teardown): a thread left running would fail against a database that is gone."""
    return _join(app, timeout, stop=True)


def _join(app: Flask, timeout: float, *, stop: bool) -> bool:
    with _registry:
        delivery = _running.get(id(app))
    if delivery is None:
        return True
    if stop:
        delivery.stop.set()
    delivery.thread.join(timeout)
    return not delivery.thread.is_alive()


def _deliver_loop(app: Flask, stop: threading.Event) -> None:
    while True:
        # Mail waits a moment so that one round carries what several requests wrote: a round
        # costs three write transactions whatever it sends, and under load rounds of one
        # message took the write lock from bookings three times per booking.
        stop.wait(COALESCE_SECONDS)
        with _registry:
            if stop.is_set() or id(app) not in _pending:
                _running.pop(id(app), None)
                _pending.discard(id(app))
                return
            _pending.discard(id(app))
        try:
            outbox.deliver_due(app, clock.now(app))
        except Exception:
            log.exception("mail delivery failed; `bookwell tick` or the next booking retries")
