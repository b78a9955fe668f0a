"""The base of the registry's declared schema: a section that refuses unknown keys and says what is wrong in words.

Pydantic checks the types and limits a model declares; this turns what it finds into the sentences an engineer
reads (`'2' must be a number between 0 and 1 (e.g. 0.1)`), collects every problem of a section at once (checks
that span two fields included), and leaves the location to the caller (`district 'oak', field guard.max_...`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

# The error type of every problem a section reports; its message is the whole sentence.
PROBLEM = "registry"
Loc = tuple[str | int, ...]
# What a value of the wrong type must be, for fields that say nothing more particular (`Refuse`).
PLAIN_WORDS = {
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
}


@dataclass(frozen=True)
class Refuse:
    """Annotates a field with what to say when its value is refused, whatever pydantic found wrong with it;
    ``{value}`` stands for the value as written. A callable builds the sentence from the value."""

    message: str | Callable[[Any], str]

    def text(self, value: Any) -> str:
        return self.message(value) if callable(self.message) else self.message.replace("{value}", str(value))


def problem(message: str, loc: Loc = ()) -> InitErrorDetails:
    # The message travels in the context: a template would read the braces of `{from: <date>, ...}` as fields.
    return InitErrorDetails(type=PydanticCustomError(PROBLEM, "{problem}", {"problem": message}), loc=loc, input=None)


def refused(message: str, loc: Loc = ()) -> ValidationError:
    """A problem to raise from a validator, at ``loc`` below the section or field it is raised from."""
    return ValidationError.from_exception_data(PROBLEM, [problem(message, loc)])


def unknown_key(key: Any, known: Iterable[str], noun: str = "key") -> str:
    """A typo'd key is refused rather than silently ignored (`timezon:` would leave every schedule in UTC)."""
    known = tuple(known)
    close = difflib.get_close_matches(str(key), known, n=1)
    return f"unknown {noun}" + (f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})")


class Section(BaseModel):
    """A mapping of the registry: unknown keys refused, values strictly typed, every problem worded."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)
    # What an unknown key of this section is called ("unknown limit"), and keys refused for a stated reason.
    key_noun: ClassVar[str] = "key"
    refused_keys: ClassVar[Mapping[str, str]] = {}
    # What the section must be, when it is not a mapping (default: "a mapping of <its keys>").
    shape: ClassVar[str] = ""

    @classmethod
    def describe(cls) -> str:
        return cls.shape or f"a mapping of {', '.join(keys_of(cls))}"

    @classmethod
    def enter(cls, data: Any, context: dict[str, Any]) -> None:
        """Note in the validation context what the sections below this one need to know (a district's provider)."""

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any], context: Mapping[str, Any]) -> Iterator[InitErrorDetails]:
        """Problems that span fields, checked on the values as written so that they are reported even when a field
        of the section is wrong too."""
        return iter(())

    @model_validator(mode="wrap")
    @classmethod
    def _worded_problems(cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        context = info.context if isinstance(info.context, dict) else {}
        cls.enter(data, context)
        problems: list[InitErrorDetails] = []
        try:
            section = handler(data)
        except ValidationError as error:
            problems += _worded(cls, data, error)
        if isinstance(data, Mapping):
            problems += cls.cross_checks(data, context)
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return section


def keys_of(section: type[BaseModel]) -> list[str]:
    """The keys a section accepts, as written in the registry (aliases included)."""
    return [info.alias or name for name, info in section.model_fields.items()]


def _refusal(info: FieldInfo | None) -> Refuse | None:
    return next((item for item in info.metadata if isinstance(item, Refuse)), None) if info else None


def _missing(info: FieldInfo | None) -> str:
    kind = info.annotation if info else None
    return f"missing: {kind.describe()}" if isinstance(kind, type) and issubclass(kind, Section) else "missing"


def _union_tags(info: FieldInfo | None) -> set[Any]:
    """The values of a discriminated union's tag (`kind: rest`, `kind: csv`)."""
    if info is None or not isinstance(info.discriminator, str):
        return set()
    members = [member for member in get_args(info.annotation) if isinstance(member, type)]
    return {
        tag
        for member in members
        if issubclass(member, BaseModel) and (tag_field := member.model_fields.get(info.discriminator))
        for tag in get_args(tag_field.annotation)
    }


def _worded(section: type[Section], data: Any, error: ValidationError) -> Iterator[InitErrorDetails]:
    raw = data if isinstance(data, Mapping) else {}
    fields = {info.alias or name: info for name, info in section.model_fields.items()}
    worded: set[str | int] = set()
    # Unknown keys first: a misspelt key usually explains the "missing" that follows it.
    for found in sorted(error.errors(), key=lambda found: found["type"] != "extra_forbidden"):
        loc, kind = found["loc"], found["type"]
        if len(loc) > 1 and loc[1] in _union_tags(fields.get(str(loc[0]))):
            loc = (loc[0], *loc[2:])  # a union names the kind it tried (`source.rest.auth`): the key says it already
        if kind == PROBLEM:  # worded already, by a section below or a validator
            yield problem(str((found.get("ctx") or {})["problem"]), loc)
        elif not loc:
            yield problem(f"must be {section.describe()}")
        elif kind == "extra_forbidden" and len(loc) == 1:
            key = str(loc[0])
            yield problem(section.refused_keys.get(key) or unknown_key(key, fields, section.key_noun), loc)
        elif (refusal := _refusal(fields.get(str(loc[0])))) is not None:
            if loc[0] not in worded:  # one sentence per field, however many items of it are wrong
                worded.add(loc[0])
                yield problem(refusal.text(raw.get(loc[0])), loc[:1])
        elif kind == "missing":
            yield problem(_missing(fields.get(str(loc[0]))), loc)
        elif kind in PLAIN_WORDS:
            yield problem(f"'{found['input']}' {PLAIN_WORDS[kind]}", loc)
        else:
            yield problem(found["msg"], loc)
