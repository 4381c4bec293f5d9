"""REST API under /api/v1: one module per resource, all collected into one route table."""

from ..http import Api
from . import (
    admin,
    auth_config,
    bookings,
    consultations,
    dev,
    me,
    queue,
    services,
    shortcodes,
    sms,
    stats,
    ticket_channel,
    transcripts,
)


def build_api() -> Api:
    api = Api()
    for module in (dev, auth_config, services, queue, ticket_channel, consultations, me, sms, shortcodes, transcripts,
                   stats, bookings, admin):
        api.include(module.api)
    return api
