from sources.config import (
    config_credentials,
    config_spec,
    credentials_config,
    credentials_title,
    secret_paths,
    secret_values,
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
