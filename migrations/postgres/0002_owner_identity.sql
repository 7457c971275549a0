-- Who owns a saga, precisely enough to prove it died, so recovery takes over early only then. A pid names one
-- process only within one PID namespace of one running kernel: containers sharing a hostname
-- each have their own pid 1234. So the owner also records its pid scope (the kernel's boot id and
-- its PID namespace) and when it started (so a reused pid is not taken for the owner). NULL:
-- unknown, and then only the lease can tell that the owner is gone.
ALTER TABLE sagas ADD COLUMN owner_pid_scope TEXT, ADD COLUMN owner_started_at BIGINT;
