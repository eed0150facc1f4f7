"""Storage: how data is kept, and nothing about what it means.

Owns the engine, the session per request and the write transaction (``db``), the tables
(``models``), core's Alembic migrations (``migrations/``), the encryption key ring and each
tenant's key (``keys``), encryption of small secrets at rest (``sealing``), files written whole
or not at all (``files``), database leases for periodic work (``leases``), rate-limit counters
shared by every process when there is no Redis (``rate_counts``) and the Redis connection and
job queue (``queue``). Running the migrations of core and of every plugin is
:mod:`bookwell.core.schema`.

May use: :mod:`bookwell.core.foundation`. Everything above may use storage; storage calls no
plugin and knows no request.
"""
