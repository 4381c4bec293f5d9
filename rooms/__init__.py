"""The domain and its Redis store: tenants, queues, consultations, invites, bookings, the audit trail, events.

Knows nothing of HTTP, Socket.IO or WebRTC; all state shared across processes lives here. The front ends
(signaling's REST routes and WebSocket, the chat) use it like this::

    store = Store.open(RedisSettings(url=...), cipher=FieldCipher(master_key))   # one per process, closed at exit
    hub = EventHub(store.redis); await hub.start()              # the process's one event subscription
    store.service_settings.follow(hub, tenants)                  # cached runtime settings drop on change

    # the use cases (rooms/service.py): change + audit entry + event together, domain errors on refusal
    queued = await store.rooms.join_queue(principal, tenant, service, channel=..., reason=..., writes_per_minute=60)
    taken = await store.rooms.take_next(principal, "nettlege", takes_per_minute=60)   # (ticket, consultation) | None
    await store.rooms.knock(principal, cid); await store.rooms.decide(host, cid, participant_id, admit=True)
    await store.rooms.redeem_invite(token, subject=..., display_name=..., holder_role=Role.INTERPRETER)
    await store.rooms.end(host, cid, Outcome.RESOLVED)

    # reads go to the stores directly: store.queue.get / place / waiting, store.consultations.get, store.audit...
    remove = hub.add(tenant, consultation_topic(cid), listener)   # listener(Event | Resync), ids only
    with hub.inbox(tenant, consultation_topic(cid)) as events: ...  # the same as a queue for one consumer

Errors (rooms/errors.py) carry a stable `code` and a Norwegian `message`: NotFound, Conflict, Forbidden, Gone,
ServiceClosed, RateLimited (`retry_after_s`), Unavailable / NotReplicated (`retry_after_s`, retry the call).
Events (rooms/events.py) are typed and carry ids only; `Resync` means "look at the store again". Every key is
declared in rooms/keys.py under the tenant's `{tenant}` hash tag (chat's own in chat/keys.py); every script
declares each key it touches.
"""
