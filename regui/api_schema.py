"""OpenAPI post-processing: the error answers every operation can give, written once.

drf-spectacular documents success answers; the API's errors all come from
regui.rest.exception_handler, so they are described here rather than on each view.
"""

ERROR_SCHEMA = {
    "type": "object",
    "description": "What went wrong, for people.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# Field errors: {"field": ["message", ...], ...}, or {"detail": "..."} for the whole request.
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": "Field errors, or a detail about the whole request.",
    "additionalProperties": {
        "oneOf": [
            {"type": "string"},
            {"type": "array", "items": {}},
            {"type": "object"},
        ]
    },
}
ERRORS = {
    "400": ("Bad input; nothing was changed.", "ValidationError"),
    "401": ("No credentials, or an invalid or expired API token.", "Error"),
    "403": ("Your role, or a read-only token, does not allow this.", "Error"),
    "404": ("No such object, or a registry you are not a member of.", "Error"),
    "405": ("Method not allowed.", "Error"),
    "406": ("Cannot answer in the requested format.", "Error"),
    "415": ("Unsupported request body format.", "Error"),
    "429": ("Too many requests; retry after the Retry-After seconds.", "Error"),
}
# Answers that only some operations give, for a reason the registry or a job decides.
REGISTRY_ERRORS = {
    "409": ("The registry's state does not allow it (deletes disabled, plan changed).", "Error"),
    "502": ("The registry refused or could not be reached; nothing changed.", "Error"),
}


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["ValidationError"] = VALIDATION_ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            errors = dict(ERRORS)
            if method == "delete" or path.endswith(("/cleanup/", "/api/scan")):
                errors.update(REGISTRY_ERRORS)
            for code, (description, schema) in errors.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{schema}"}
                            }
                        },
                    },
                )
    return result
