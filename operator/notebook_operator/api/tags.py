"""Cloud tags as the resources declare them: the limits both clouds accept.

ModelArts (huaweicloudsdkmodelarts TmsTag): a key has at most 128 characters - letters, digits, space and
`_ . : = + - @` - not starting or ending with a space nor starting with `_sys_`; a value at most 255 characters,
the same plus `/`. PAI-DSW labels (alibabacloud_pai_dsw20220101 UpdateInstanceLabelsRequestLabels: Key, Value)
state no limits; Alibaba Cloud reserves keys starting with `aliyun` and `acs:`. The keys `cloudnotebooks.io:*`
are the operator's own (ownership). At most 8 declared tags per NotebookInstance and 8 defaults per account:
with the 3 ownership tags, 19, under ModelArts' 20 tags per resource.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from notebook_operator.api.meta import cel, validations

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 255
TAGS_MAX = 8
TAG_KEY_PATTERN = r"^[A-Za-z0-9_.:=+@-]([A-Za-z0-9 _.:=+@-]*[A-Za-z0-9_.:=+@-])?$"
TAG_VALUE_PATTERN = r"^[A-Za-z0-9 _.:/=+@-]*$"
RESERVED_PREFIXES = ("cloudnotebooks.io:", "_sys_", "aliyun", "acs:")

TagValue = Annotated[str, Field(max_length=TAG_VALUE_MAX, pattern=TAG_VALUE_PATTERN)]


def tags_field(description: str) -> Any:
    """A map of cloud tags, checked by the CRD as the clouds would check them (naming the offending field)."""
    reserved = " && ".join(f"!k.startsWith('{p}')" for p in RESERVED_PREFIXES)
    return Field(
        default=None,
        max_length=TAGS_MAX,
        description=description,
        json_schema_extra=validations(
            cel(
                f"self.all(k, k.size() <= {TAG_KEY_MAX} && k.matches('{TAG_KEY_PATTERN}'))",
                f"tag keys have 1 to {TAG_KEY_MAX} characters: letters, digits, space and _ . : = + - @ "
                "(no space first or last)",
            ),
            cel(f"self.all(k, {reserved})", "tag keys starting with " + ", ".join(RESERVED_PREFIXES) + " are reserved"),
        ),
    )
