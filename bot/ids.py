"""Action, block and callback ids: named once, used everywhere."""

from enum import StrEnum


class Action(StrEnum):
    LIST_PAGE = "connections.page"
    OPEN = "connection.open"
    TAB = "connection.tab"  # also carries paging within a tab
    SHARE = "connection.share"
    EXTRACT = "connection.extract"
    SYNC_ACCOUNTS = "connection.sync_accounts"
    RECONNECT = "connection.reconnect"
    DELETE = "connection.delete"
    ESCALATE = "connection.escalate"
    ORDER_MENU = "order.menu"
    NEW_CONNECTION = "connection.new"
    HELP = "connections.help"
    ALERT_CHANNEL = "connection.alert_channel"
    SIGN_IN = "connection.sign_in"  # a URL button: the browser goes to /oauth/<source>/start
    ALERT_ACK = "alert.ack"  # "I'm on it"
    ALERT_RELEASE = "alert.release"
    ALERT_RUN_NOW = "alert.order.run"
    ALERT_PAUSE = "alert.order.pause"
    HISTORY_PAGE = "order.history.page"  # also .prev / .next
    SPEC_BRANCH = "connection.config_option"  # a oneOf option chosen in a spec source's form


class Callback(StrEnum):
    DELETE_ORDER = "order.delete.confirm"
    SHARE = "connection.share.submit"  # the channel picker of Share in channel from a DM
    NEW_CONNECTION_SOURCE = "connection.new.source"
    NEW_CONNECTION_CREDENTIALS = "connection.new.credentials"
    RECONNECT = "connection.reconnect.submit"
    ESCALATE = "connection.escalate.submit"
    EXTRACT_ACCOUNTS = "extract.accounts"
    EXTRACT_TEMPLATE = "extract.template"
    EXTRACT_CONFIGURE = "extract.configure"
    EXTRACT_REVIEW = "extract.review"
    RUN_HISTORY = "order.history"


class Tab(StrEnum):
    ORDERS = "orders"
    ACCOUNTS = "accounts"
    SETTINGS = "settings"

    @property
    def title(self) -> str:
        return {"orders": "Extraction orders", "accounts": "Accounts", "settings": "Settings"}[self.value]


class OrderAction(StrEnum):
    RUN_NOW = "run"
    PAUSE = "pause"
    RESUME = "resume"
    DELETE = "delete"
    HISTORY = "history"
    SILENT_OFF = "silent_off"  # too-few-rows alerts off
    SILENT_ON = "silent_on"
