"""Runs one account sync of a slow source, to be killed (SIGKILL) half-way by a test."""

import sys
from pathlib import Path

from core.clock import Clock
from core.settings import load_settings
from engine.account_sync import sync_accounts
from engine.context import Context
from storage.db import Database
from storage.vault import Vault

url, data_dir, key, connection_id = sys.argv[1:5]
settings = load_settings({"CONNBOT_DATABASE_URL": url, "CONNBOT_DATA_DIR": data_dir}, dotenv=False)
ctx = Context(settings=settings, db=Database(settings.database_url), vault=Vault([key]), clock=Clock())
print("started", flush=True)
sync_accounts(ctx, "T1", int(connection_id), trigger="schedule")
print("finished", flush=True)  # the test kills us before this
Path(data_dir, "finished").touch()
