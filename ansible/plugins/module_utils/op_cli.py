# -*- coding: utf-8 -*-
# Copyright (c) op contributors
# MIT License (see LICENSE at the root of the op repository)

"""What the op.host modules share: finding op, running it with --json and reading its JSON
contract (format_version 1.x), so that each module only maps op's document to Ansible's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

# The contract major version these modules read; a minor version only adds fields.
CONTRACT_MAJOR = "1"

# Options every module passes to op the same way: where op is and which ledger it uses.
COMMON_ARGUMENT_SPEC = dict(
    op_path=dict(type="path"),
    ledger=dict(type="path"),
    ledger_key=dict(type="path", no_log=False),
)


class OpFailure(Exception):
    """op answered with an error: its message, hint, code and details for fail_json."""

    def __init__(self, msg, **facts):
        super(OpFailure, self).__init__(msg)
        self.msg = msg
        self.facts = facts


def op_command(module, subcommand):
    """`op --json [--ledger DIR] [--ledger-key FILE] SUBCOMMAND...` as an argument list."""
    op_path = module.params.get("op_path") or module.get_bin_path("op", required=True)
    command = [op_path, "--json"]
    if module.params.get("ledger"):
        command += ["--ledger", module.params["ledger"]]
    if module.params.get("ledger_key"):
        command += ["--ledger-key", module.params["ledger_key"]]
    return command + list(subcommand)


def error_facts(error):
    """op's error object ({code, message, hint?, details}) as fail_json keywords."""
    facts = dict(code=error.get("code"), details=error.get("details") or [])
    if error.get("hint"):
        facts["hint"] = error["hint"]
    return facts


def detail_line(detail):
    """One detail as op prints it on a terminal: `PATH: MESSAGE` (an op older than the contract gives the line)."""
    if isinstance(detail, dict):
        return "%s: %s" % (detail.get("path"), detail.get("message")) if detail.get("path") else detail.get("message")
    return str(detail)


def error_message(error):
    """op's message, its details and its hint in one line, as op prints them on a terminal."""
    message = error.get("message") or "op failed without a message"
    details = [detail_line(detail) for detail in error.get("details") or []]
    if details:
        message += ": " + "; ".join(details)
    return message + ("; hint: " + error["hint"] if error.get("hint") else "")


def run_op(module, subcommand):
    """Runs op with --json; returns (rc, document, stderr).

    Raises OpFailure when op printed no JSON document, one of another major version, or its
    error document ({format_version, error}); a document that reports a failure within a
    result (an apply that did not converge) is returned for the caller to read.
    """
    command = op_command(module, subcommand)
    rc, stdout, stderr = module.run_command(command)
    try:
        document = json.loads(stdout)
    except ValueError:
        raise OpFailure(
            "op printed no JSON document (exit code %d): %s" % (rc, (stderr or stdout).strip()),
            rc=rc, stdout=stdout, stderr=stderr, cmd=command,
        )
    if not isinstance(document, dict):
        raise OpFailure("op printed JSON that is not an object", rc=rc, stdout=stdout, cmd=command)
    version = document.get("format_version")
    # An op older than the contract prints no format_version; its documents carry the same
    # fields, so only a version that says another major one is refused.
    if version is not None and str(version).split(".", 1)[0] != CONTRACT_MAJOR:
        raise OpFailure(
            "op printed format_version %s; the op.host collection reads %s.x (update the collection or op)"
            % (version, CONTRACT_MAJOR),
            rc=rc, cmd=command,
        )
    error = document.get("error")
    if rc != 0 and isinstance(error, dict) and set(document) <= set(["format_version", "error"]):
        facts = error_facts(error)
        raise OpFailure(error_message(error), rc=rc, stderr=stderr, cmd=command, **facts)
    return rc, document, stderr


def fail(module, failure, **extra):
    """fail_json with op's message and everything it said about it."""
    facts = dict(failure.facts)
    facts.update(extra)
    module.fail_json(msg=failure.msg, **facts)
