"""Moved to `pawgle.common.events.matcher` and `.chat` (events are grouped by producer); kept for old imports."""

from pawgle.common.events.chat import ConversationOpened, ConversationRead, EmailReplyReceived, MessageSent
from pawgle.common.events.matcher import MatchConfirmed, MatchDismissed, MatchFound

__all__ = [
    "ConversationOpened",
    "ConversationRead",
    "EmailReplyReceived",
    "MatchConfirmed",
    "MatchDismissed",
    "MatchFound",
    "MessageSent",
]
