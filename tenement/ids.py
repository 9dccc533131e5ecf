"""Names of services and tenants, and instance ids (``service:tenant``).

One place parses and validates them, so the config, the supervisor, the API and the
CLI all accept and reject the same text with the same message.

A dataclass rather than attrs (the style elsewhere): every ``ten`` client command
imports this module, and importing attrs costs 30-40 ms of a command's start here.
"""

from __future__ import annotations

import dataclasses
import re

from tenement.errors import TenementError

#: what a service name or a tenant id may be: safe in a path, a hostname label and a URL,
#: and never read as an option where it lands in a command line (``--tenant {id}``), so it
#: cannot start with '-'
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}")
NAME_RULE = "1 to 63 characters from A-Z, a-z, 0-9, '_' and '-', not starting with '-'"


class InvalidInstanceId(TenementError):
    exit_code = 2


def is_valid_name(text: str) -> bool:
    return NAME_PATTERN.fullmatch(text) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceRef:
    """A parsed instance id: ``notes:alice`` -> service ``notes``, tenant ``alice``."""

    service: str
    tenant: str

    @classmethod
    def parse(cls, text: str) -> InstanceRef:
        """Split on the first colon, as the reference does, then validate both parts.

        Raises:
            InvalidInstanceId: with the reference's message for a missing or empty part,
                and a message naming the rule for a part that is not a valid name.
        """
        service, sep, tenant = text.partition(":")
        if not sep or not service or not tenant:
            raise InvalidInstanceId(f"Invalid instance ID '{text}'. Expected format: process:id")
        for part in (service, tenant):
            if not is_valid_name(part):
                raise InvalidInstanceId(
                    f"Invalid instance ID '{text}': '{part}' must be {NAME_RULE}"
                )
        return cls(service, tenant)

    def __str__(self) -> str:
        return f"{self.service}:{self.tenant}"
