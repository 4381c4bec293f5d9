"""Configuration: the demo, environment over file, and bad config naming the key."""

import secrets
import subprocess
import sys
from datetime import datetime

import pytest

from rooms.tenants import OSLO, OpeningHours
from signaling.config import ConfigError, load_config


def test_builtin_demo_has_one_municipality_with_both_services():
    config = load_config(None, environ={})
    assert [t.id for t in config.tenants] == ["demo"]
    assert [s.id for s in config.tenants[0].services] == ["nettlege", "legevakt"]
    assert config.redis_url is None and config.dev_issuer_enabled and config.secret_key
    assert config.port == 8080 and config.host == "127.0.0.1"


def test_environment_overrides_file():
    config = load_config(None, environ={"NETTLEGE_PORT": "9001", "REDIS_URL": "redis://r:6379/1",
                                        "NETTLEGE_ALLOWED_ORIGINS": "https://a.no, https://b.no"})
    assert config.port == 9001 and config.redis_url == "redis://r:6379/1"
    assert config.origins()[-2:] == ["https://a.no", "https://b.no"]


@pytest.mark.parametrize("toml, key", [
    ('[[tenants]]\nid = "x"\nname = "X"\n[[tenants.services]]\nid = "s"\nname = "S"\nchannels = ["fax"]\n',
     "tenants.0.services.0.channels"),
    ('[[tenants]]\nid = "x"\nname = "X"\n[[tenants.services]]\nid = "s"\nname = "S"\n'
     'opening_hours = { default = "25:00-26:00" }\n', "opening_hours"),
    ('port = "many"\n[[tenants]]\nid = "x"\nname = "X"\nservices = []\n', "port"),
    ('surprise = 1\n[[tenants]]\nid = "x"\nname = "X"\nservices = []\n', "surprise"),
    ('tenants = []\n', "tenants"),
    ('[[tenants]\n', "TOML"),
])
def test_bad_config_names_the_key(tmp_path, toml, key):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert key in str(err.value)


def test_production_requires_secrets():
    with pytest.raises(ConfigError, match="secret_key"):
        load_config(None, environ={"NETTLEGE_ENV": "production"})
    with pytest.raises(ConfigError, match="chat_master_key"):
        load_config(None, environ={"NETTLEGE_ENV": "production", "NETTLEGE_SECRET_KEY": "s" * 40})
    chat_key = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U="
    with pytest.raises(ConfigError, match="audit_key"):
        load_config(None, environ={"NETTLEGE_ENV": "production", "NETTLEGE_SECRET_KEY": secrets.token_urlsafe(32),
                                   "NETTLEGE_CHAT_MASTER_KEY": chat_key, "NETTLEGE_PUBLIC_URL": "https://x.test"})
    with pytest.raises(ConfigError, match="audit_key must be at least 32"):
        load_config(None, environ={"NETTLEGE_AUDIT_KEY": "short"})
    config = load_config(None, environ={"NETTLEGE_ENV": "production", "NETTLEGE_SECRET_KEY": secrets.token_urlsafe(32),
                                        "NETTLEGE_CHAT_MASTER_KEY": chat_key, "NETTLEGE_AUDIT_KEY": "a" * 40,
                                        "REDIS_URL": "redis://127.0.0.1:6390/0",
                                        "NETTLEGE_PUBLIC_URL": "https://x.test"})
    assert not config.dev_issuer_enabled


def test_cli_exits_with_message_on_bad_config(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('port = -5\n[[tenants]]\nid = "x"\nname = "X"\nservices = []\n')
    proc = subprocess.run([sys.executable, "-m", "signaling.cli", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "port" in proc.stderr and "Traceback" not in proc.stderr


def test_opening_hours_in_oslo_time():
    hours = OpeningHours(default="08:00-22:00", sun="closed")
    monday_morning = datetime(2026, 11, 23, 7, 59, tzinfo=OSLO)
    assert not hours.is_open(monday_morning)
    assert hours.is_open(monday_morning.replace(hour=8, minute=0))
    assert hours.is_open(monday_morning.replace(hour=21, minute=59))
    assert not hours.is_open(monday_morning.replace(hour=22, minute=1))
    assert not hours.is_open(datetime(2026, 11, 29, 12, 0, tzinfo=OSLO))  # a Sunday
    assert hours.next_opening(datetime(2026, 11, 28, 23, 0, tzinfo=OSLO)) == datetime(2026, 11, 30, 8, 0, tzinfo=OSLO)
    assert OpeningHours(default="24/7").is_open(datetime(2026, 11, 29, 3, 0, tzinfo=OSLO))
