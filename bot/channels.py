"""Channel membership: connbot posts only where it is a member."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.errors import ConnbotError


def join_channel(client: WebClient, channel: str, *, then: str) -> None:
    """Make connbot a member of `channel`, so that it can post there: it joins a public channel;
    a private one needs an invitation from a member, which the error asks for."""
    try:
        client.conversations_join(channel=channel)
    except SlackApiError as error:
        code = error.response.get("error")
        if code == "method_not_supported_for_channel_type":  # a private channel connbot is already in
            return
        if code == "is_archived":
            raise ConnbotError(f"<#{channel}> is archived; choose another channel.") from None
        raise ConnbotError(
            f"connbot is not in <#{channel}>. Invite it there with `/invite @connbot`, then {then}."
        ) from None
