"""What reaches conditions and Events: the failing field by name, never URI credentials."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelops.api.base import describe_spec_error
from modelops.api.modelversion import ModelVersionSpec
from modelops.k8s.events import redact


def test_spec_error_names_the_field():
    with pytest.raises(ValidationError) as err:
        ModelVersionSpec.model_validate(
            {"modelName": "churn", "version": "1", "artifact": {"uri": "s3://m", "digest": "md5:x"}}
        )
    message = describe_spec_error(err.value)
    assert message.startswith("spec.artifact.digest: ")
    assert "pattern" in message


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("cannot read https://bob:hunter2@host/m.joblib", "cannot read https://***@host/m.joblib"),
        ("s3://AKIA:secret@bucket/x and ftp://u:p@h/y", "s3://***@bucket/x and ftp://***@h/y"),
        ("no credentials in s3://bucket/x", "no credentials in s3://bucket/x"),
    ],
)
def test_redact_removes_uri_credentials(message, expected):
    assert redact(message) == expected
