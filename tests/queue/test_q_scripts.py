"""How the scripts are built: each gets the library's definitions it uses, no others."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from jobqueue.protocol.lualib import library_for, split_library
from jobqueue.protocol.scripts import SCRIPT_NAMES, script_source

LIBRARY_NAMES = {
    name
    for definition in split_library(
        (resources.files("jobqueue.protocol") / "lua" / "_lib.lua").read_text("utf-8")
    )[1]
    for name in definition.names
}
LIB = """-- head
local JOB = ARGV[1]
--- definitions -----
-- a
local function a() return 1 end

-- b uses a
local function b() return a() end
local T = { 'x' }
T[2] = 'y'
local function c() return T[1] end
"""


def defined(source: str) -> list[str]:
    return re.findall(r"^local (?:function )?(\w+)", source, re.MULTILINE)


def test_a_body_gets_what_it_uses_and_what_that_uses_in_the_librarys_order() -> None:
    assert defined(library_for(LIB, "return b()")) == ["JOB", "a", "b"]
    assert defined(library_for(LIB, "return c()")) == ["JOB", "T", "c"]
    assert "T[2] = 'y'" in library_for(LIB, "return c()")  # a statement completing T's
    assert defined(library_for(LIB, "return 0")) == ["JOB"]


def test_a_library_without_the_definitions_mark_is_refused() -> None:
    with pytest.raises(ValueError, match="definitions"):
        split_library(LIB.replace("--- definitions", "-- definitions"))


def test_submit_leaves_out_the_definitions_of_taking_and_finishing() -> None:
    submit = defined(script_source("submit"))
    assert "create_jobs" in submit and "announce_work" in submit
    assert not {"take", "finish", "trim", "read_job", "plan_sweep"} & set(submit)
    complete = defined(script_source("complete"))
    assert {"read_lease", "finish_record", "trim", "drop_finished", "take", "journal"} <= set(
        complete
    )


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_library_function_a_script_calls_is_in_it(name: str) -> None:
    source = script_source(name)
    called = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", source)) & LIBRARY_NAMES
    assert called <= set(defined(source))
