"""REST API under /api/v1: one module per resource, all collected into one route table."""

from ..http import Api
from . import consultations, dev, me, queue, services, transcripts


def build_api() -> Api:
    api = Api()
    for module in (dev, services, queue, consultations, me, transcripts):
        api.include(module.api)
    return api
