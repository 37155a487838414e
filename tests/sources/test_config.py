import pytest

from sources.base import BusinessAccount, Credentials, InvalidCredentials
from sources.config import (
    AccountField,
    account_field,
    business_account,
    config_accounts,
    config_credentials,
    config_errors,
    config_spec,
    credentials_config,
    credentials_title,
    dotted,
    field_title,
    keep_secrets,
    pointer,
    pointer_path,
    secret_hint,
    secret_paths,
    secret_values,
    without_secrets,
)

SPEC = {
    "type": "object",
    "properties": {
        "start_date": {"type": "string"},
        "api_key": {"type": "string", "airbyte_secret": True},
        "credentials": {
            "type": "object",
            "oneOf": [
                {
                    "properties": {
                        "auth_type": {"const": "oauth"},
                        "client_secret": {"type": "string", "airbyte_secret": True},
                        "refresh_token": {"type": "string", "airbyte_secret": True},
                    }
                },
                {"properties": {"auth_type": {"const": "token"}, "token": {"type": "string", "airbyte_secret": True}}},
            ],
        },
        "accounts": {
            "type": "array",
            "items": {"type": "object", "properties": {"id": {"type": "string"}, "pw": {"airbyte_secret": True}}},
        },
    },
}


def test_a_configuration_travels_as_credentials_and_back():
    config = {"start_date": "2024-01-01", "api_key": "k" * 30, "count": 3}
    credentials = config_credentials(config, title="Shop")
    assert credentials_config(credentials) == config
    assert credentials_title(credentials) == "Shop"
    assert "k" * 30 not in repr(credentials)


@pytest.mark.parametrize("stored", ["[1, 2]", '"text"', "3"])
def test_a_stored_configuration_that_is_not_an_object_asks_for_a_reconnect(stored):
    with pytest.raises(InvalidCredentials) as raised:
        credentials_config(Credentials({"config": stored}))
    assert raised.value.code == "config_error"


def test_secrets_are_found_at_every_depth_and_only_where_present():
    config = {
        "start_date": "2024-01-01",
        "api_key": "top-secret-key",
        "credentials": {"auth_type": "oauth", "client_secret": "cs-1", "refresh_token": "rt-22"},
        "accounts": [{"id": "a1", "pw": "pw-333"}, {"id": "a2"}],
    }
    assert secret_paths(SPEC, config) == [
        ("api_key",),
        ("credentials", "client_secret"),
        ("credentials", "refresh_token"),
        ("accounts", 0, "pw"),
    ]
    assert secret_values(SPEC, config) == ["top-secret-key", "pw-333", "rt-22", "cs-1"]
    assert secret_values(SPEC, {"start_date": "x"}) == []


def test_only_sources_with_a_schema_have_a_config_spec():
    class Flat:
        credential_fields = ()

    class Spec:
        config_spec = SPEC

    assert config_spec(Flat()) is None and config_spec(Spec()) is SPEC


# -- what the connect form and the connector bridge share ----------------------------------------

ADS = {
    "type": "object",
    "required": ["credentials", "customer_id"],
    "properties": {
        "start_date": {"type": "string", "order": 0},
        "customer_id": {"title": "Customer ID", "type": "string", "order": 1},
        "credentials": SPEC["properties"]["credentials"],
        "reports": {"type": "array", "items": {"type": "object", "properties": {"account_id": {"type": "string"}}}},
    },
}


def test_the_account_rule_finds_the_platform_account_by_name_at_any_depth_but_arrays():
    assert account_field(ADS) == AccountField(("customer_id",), "Customer ID", True)
    nested = {"type": "object", "properties": {"auth": {"oneOf": [{"properties": {"advertiser_id": {}}}]}}}
    assert account_field(nested) == AccountField(("auth", "advertiser_id"), "advertiser_id", False)
    ordered = {"properties": {"shop": {"order": 2}, "subdomain": {"order": 1}}}
    assert account_field(ordered).path == ("subdomain",)  # the spec's order decides
    assert account_field({"properties": {"reports": ADS["properties"]["reports"], "name": {}}}) is None
    assert account_field(SPEC) is None


def test_the_business_account_is_the_configured_accounts_else_the_title():
    ids = {"properties": {"account_ids": {"type": "array"}}}
    assert config_accounts(ids, {"account_ids": ["1", 2, ""]}) == ["1", "2"]
    assert config_accounts(ADS, {"customer_id": "123, 456 ,"}) == ["123", "456"]
    assert business_account(ADS, config_credentials({"customer_id": "123,456"})) == BusinessAccount(
        "123, 456", "123, 456"
    )
    assert business_account(SPEC, config_credentials({}, title="Shop data")) == BusinessAccount(
        "Shop data", "Shop data"
    )
    with pytest.raises(InvalidCredentials, match="fill in Customer ID or give the connection a name"):
        business_account(ADS, config_credentials({}))


def test_secrets_are_hinted_masked_by_pointer_and_taken_out_at_every_depth():
    config = {
        "api_key": "top-secret-key-of-some-length",
        "credentials": {"auth_type": "oauth", "client_secret": "cs-1"},
        "accounts": [{"id": "a1", "pw": "pw-333"}],
        "start_date": "2024-01-01",
    }
    assert secret_hint(SPEC, config) == {
        "/api_key": "to…ngth",
        "/credentials/client_secret": "••••••••",
        "/accounts/0/pw": "••••••••",
    }
    assert without_secrets(SPEC, config) == {
        "credentials": {"auth_type": "oauth"},
        "accounts": [{"id": "a1"}],
        "start_date": "2024-01-01",
    }
    whole = {"properties": {"keys": {"type": "array", "airbyte_secret": True}}}  # a secret list is secret throughout
    assert secret_values(whole, {"keys": ["k-1", "k-22"]}) == ["k-22", "k-1"]
    assert without_secrets(whole, {"keys": ["k-1"]}) == {"keys": []}


def test_a_reconnect_keeps_the_secrets_left_empty_on_the_same_auth_method_only():
    stored = {
        "api_key": "key-1",
        "credentials": {"auth_type": "oauth", "client_secret": "cs-1", "refresh_token": "rt-1"},
        "accounts": [{"id": "a1", "pw": "pw-1"}],
    }
    same = {"credentials": {"auth_type": "oauth", "refresh_token": "rt-2"}, "accounts": [{"id": "a1"}]}
    assert keep_secrets(SPEC, stored, same) == {
        "api_key": "key-1",
        "credentials": {"auth_type": "oauth", "client_secret": "cs-1", "refresh_token": "rt-2"},
        "accounts": [{"id": "a1"}],  # items may have moved: their secrets are typed again
    }
    other = {"api_key": "", "credentials": {"auth_type": "token", "token": "t-1"}}
    assert keep_secrets(SPEC, stored, other) == {
        "api_key": "key-1",
        "credentials": {"auth_type": "token", "token": "t-1"},
    }
    assert keep_secrets(SPEC, stored, {}) == {"api_key": "key-1"}  # an object left out stays out


def test_validation_speaks_plain_words_on_the_field_and_never_quotes_the_value():
    spec = {
        **ADS,
        "properties": {
            **ADS["properties"],
            "count": {"title": "Count", "type": "integer", "minimum": 1},
            "until": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "pattern": "^[0-9]{4}$", "pattern_descriptor": "YYYY"},
            "kind": {"type": "string", "enum": ["a", "b"]},
        },
    }
    plant = "SECRET-7"
    config = {
        "count": 0,
        "until": f"{plant}-2024-01-01",
        "day": plant,
        "kind": plant,
        "start_date": 5,
        "credentials": {"auth_type": "oauth", "client_secret": 7},
    }
    errors = config_errors(spec, config)
    assert errors == {
        "/customer_id": "Customer ID is required.",
        "/count": "Must be at least 1.",
        "/until": "Must be a date and time like 2024-01-31T00:00:00Z.",
        "/day": "Must match the format YYYY.",
        "/kind": "Must be one of: a, b.",
        "/start_date": "Must be text.",
        "/credentials/client_secret": "Must be text.",  # inside the oneOf option the object took
    }
    assert plant not in str(errors)
    assert config_errors(spec, {"customer_id": "1", "credentials": {"auth_type": "none"}}) == {
        "/credentials": "Choose one of: option 1, option 2."
    }
    valid = {"customer_id": "1", "credentials": {"auth_type": "token", "token": "t"}, "until": "2024-01-31T00:00:00Z"}
    assert config_errors(spec, valid) == {}


def test_paths_read_as_pointers_and_as_words():
    path = ("a/b", "c~d", "e")
    assert pointer_path(pointer(path)) == path and pointer(path) == "/a~1b/c~0d/e"
    assert dotted(("accounts", 0, "pw")) == "accounts[0].pw"
    assert field_title(ADS, ("customer_id",)) == "Customer ID"
    assert field_title(SPEC, ("credentials", "token")) == "credentials.token"  # no title: its path
