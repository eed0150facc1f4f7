"""The booking domain: what a business offers, when it is free, and the life of a booking.

Owns tenants (``tenants``: creating a business and its first service and provider), the
catalogue (``catalogue``: services, providers, working hours, time off; also the business's
contact details and staff accounts' roles, which the staff pages edit beside them),
free slots (``availability``), booking, cancelling and rescheduling in one write transaction
with the plugins' guards (``lifecycle``), what happened after the appointment (``outcomes``)
and replayed requests (``idempotency``).

May use: :mod:`bookwell.core.access` (ending a deactivated staff member's sessions),
:mod:`bookwell.core.context`, :mod:`bookwell.core.mail`, :mod:`bookwell.core.pluginhost`,
:mod:`bookwell.core.audit`, :mod:`bookwell.core.storage`, :mod:`bookwell.core.foundation`.
Never the web: errors are exceptions, which the web turns into answers.
"""
