"""All storage I/O: the Redis Stream journal, the Postgres persister, snapshots, replay and the
embedded Redis/Postgres servers used when REDIS_URL / DATABASE_URL are unset.

Rule kept here: nothing is acknowledged before its journal entry is confirmed by Redis.
"""
