"""Validation errors are reported with a simple field name and the validator's own reason."""

from services.api.errors import validation_field, validation_item, validation_message


def test_field_names_drop_the_request_part():
    assert validation_field(("body", "aoi")) == "aoi"
    assert validation_field(("body", "delivery", "webhook_url")) == "delivery.webhook_url"
    assert validation_field(("body", "collections", 0)) == "collections.0"
    assert validation_field(("query", "limit")) == "limit"
    assert validation_field(("body",)) == "body"


def test_messages_lose_pydantics_value_error_prefix():
    assert validation_message("Value error, must contain words") == "must contain words"
    assert validation_message("Input should be less than or equal to 1") == (
        "Input should be less than or equal to 1"
    )


def test_items_of_pydantic_errors():
    assert validation_item(
        {
            "type": "less_than_equal",
            "loc": ("body", "threshold"),
            "msg": "Input should be less than or equal to 1",
        }
    ) == ("threshold", "Input should be less than or equal to 1", "less_than_equal")
    invalid_json = {
        "type": "json_invalid",
        "loc": ("body", 1),
        "msg": "JSON decode error",
        "ctx": {"error": "Expecting property name enclosed in double quotes"},
    }
    assert validation_item(invalid_json) == (
        "body",
        "invalid JSON at character 1: Expecting property name enclosed in double quotes",
        "json_invalid",
    )
