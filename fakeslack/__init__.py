"""A faithful local stand-in for Slack, for tests and a local console mode.

* :class:`FakeSlack` (``server.py``) -- Web API + response_urls + workspace state.
* :class:`AppDriver` / :class:`SlackUser` (``client.py``) -- Slack's side of the
  conversation with an app: signed slash commands, clicks, modal submissions,
  events, delivered over HTTP or to an in-process bolt ``App``.
* :func:`check_message` / :func:`check_view` (``limits.py``) -- Block Kit limits.
"""

from .client import (
    AppDriver,
    ConfirmationRequired,
    ElementNotFound,
    Interaction,
    NotSubmittable,
    SlackUser,
    bolt_target,
    http_target,
    sign,
    wsgi_target,
)
from .limits import Problem, check_blocks, check_message, check_view
from .models import Call, Channel, Confirmation, Failure, FakeClock, Message, Team, User, View, Violation
from .server import FakeSlack, Fault
from .webapi import SlackError

__all__ = [
    "AppDriver",
    "Call",
    "Channel",
    "ConfirmationRequired",
    "Confirmation",
    "ElementNotFound",
    "FakeClock",
    "FakeSlack",
    "Failure",
    "Fault",
    "Interaction",
    "Message",
    "NotSubmittable",
    "Problem",
    "SlackError",
    "SlackUser",
    "Team",
    "User",
    "View",
    "Violation",
    "bolt_target",
    "check_blocks",
    "check_message",
    "check_view",
    "http_target",
    "sign",
    "wsgi_target",
]
