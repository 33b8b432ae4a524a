"""The closed loop's errors: each names the field (or the case) and the reason."""

from __future__ import annotations

from cxloop.errors import CxloopError


class CaseError(CxloopError):
    """Bad input to the closed loop (a rule, a closing form): ``field`` names what to fix."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(reason)


class UnknownCase(CaseError):
    """No case has this id."""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"no case with the id {case_id!r}", field="case_id")


class CaseClosed(CaseError):
    """The case is closed already: it cannot be closed (or worked) again."""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"case {case_id} is closed already", field="case_id")
