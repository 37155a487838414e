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
    SOURCE_OPTIONS = "connection.new.sources"  # the data-source picker when it has too many to list
    HELP = "connections.help"
    ALERT_CHANNEL = "connection.alert_channel"
    SIGN_IN = "connection.sign_in"  # a URL button: the browser goes to /oauth/<source>/start
    ALERT_ACK = "alert.ack"  # "I'm on it"
    ALERT_RELEASE = "alert.release"
    ALERT_RUN_NOW = "alert.order.run"
    ALERT_PAUSE = "alert.order.pause"
    HISTORY_PAGE = "order.history.page"  # also .prev / .next
    SPEC_BRANCH = "connection.config_option"  # a oneOf option chosen in a spec source's form
    WORKSPACE_SETTINGS = "workspace.settings"  # the App Home's Settings button (admins)
    USER_GROUPS = "workspace.user_groups"  # the user-group pickers: options loaded from usergroups.list


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
    WORKSPACE_SETTINGS = "workspace.settings.submit"


class SettingsField(StrEnum):
    """The inputs of the workspace Settings modal (block ids); errors are shown on them."""

    ALERT_CHANNEL = "alert_channel"
    ESCALATION_CHANNEL = "escalation_channel"
    CSM_GROUP = "csm_group"
    ADMINS = "admins"  # people
    ADMIN_GROUPS = "admin_groups"
    OPERATORS = "operators"
    OPERATOR_GROUPS = "operator_groups"


class Tab(StrEnum):
    ORDERS = "orders"
    ACCOUNTS = "accounts"
    SETTINGS = "settings"

    @property
    def heading(self) -> str:  # not `title`: that would hide str.title
        return {"orders": "Extraction orders", "accounts": "Accounts", "settings": "Settings"}[self.value]


class OrderAction(StrEnum):
    RUN_NOW = "run"
    PAUSE = "pause"
    RESUME = "resume"
    DELETE = "delete"
    HISTORY = "history"
    SILENT_OFF = "silent_off"  # too-few-rows alerts off
    SILENT_ON = "silent_on"
