"""Typed application state (aiohttp AppKey): the parts the composition root builds."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from rooms.events import EventHub
from rooms.store import Store

from .auth import Authenticator
from .config import Config

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
HUB = web.AppKey("hub", EventHub)  # the process's one Redis event subscription (chat and signaling)
AUTH = web.AppKey("auth", Authenticator)
HTTP = web.AppKey("http", aiohttp.ClientSession)
