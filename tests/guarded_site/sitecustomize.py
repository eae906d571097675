"""Loaded at start-up by subprocesses whose PYTHONPATH starts here: loopback-only sockets."""

import os
import sys

sys.path.insert(0, os.environ.get("SOCKET_GUARD_ROOT", ""))
from tests import socket_guard

socket_guard.install()
